/*
 * glob.c - the glob matcher shared by the glob tool and grep's file filter (rules in glob.h).
 *
 * How it works:
 *   1. Reject a ".." segment (invalid_pattern) and overlong patterns.
 *   2. Expand braces into at most GLOB_MAX_EXPANSIONS alternatives, the way the 0.7.8 helper
 *      does (first group, nested groups, literal single-element and unbalanced groups).
 *      Recursion depth and total bytes produced are capped as well, so a hostile pattern
 *      fails fast with pattern_too_broad instead of using memory or time.
 *   3. Rewrite "[^" to "[!" (the helper does this because fnmatch reads '^' literally).
 *   4. Compile each segment into tokens: literal code point, '?', '*', or a character class
 *      built with fnmatch.translate()'s exact bracket rules (closing-bracket search, range
 *      chunks split at '-', removal of reversed ranges).
 *   5. Match: a segment with the iterative star matcher (one backtrack point; O(n*m)); a
 *      path with a bottom-up table M[ri][pi] = "path segments ri.. match pattern segments
 *      pi..", where a "**" cell is M[ri][pi+1] || (ri < R && !dot(ri) && M[ri+1][pi]).
 *
 * Rejected: fnmatch(3) (no "**", different bracket and dot rules, and glibc's FNM_EXTMATCH
 * code backtracks exponentially on some patterns); translating to a POSIX regex (regcomp
 * has no bound on backtracking either, and no code-point semantics for stray bytes).
 */
#include "core/glob.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/paths.h"
#include "core/pyrepr.h"

#define GLOB_MAX_DEPTH 256                 /* brace recursion depth */
#define GLOB_MAX_WORK  (16u * 1024 * 1024) /* bytes produced during expansion */

/* ---- compiled form ---- */

enum tok_kind { TOK_LIT, TOK_ANY, TOK_STAR, TOK_CLASS };

struct cls {
    bool negate;
    bool never;     /* "[]"-like: matches nothing */
    bool any;       /* "[!]": matches any one character */
    uint32_t *lits; /* single code points */
    size_t nlits;
    uint32_t (*ranges)[2];
    size_t nranges;
};

struct tok {
    enum tok_kind kind;
    uint32_t cp; /* TOK_LIT */
    size_t cls;  /* TOK_CLASS: index into seg.classes */
};

struct seg {
    bool globstar; /* the whole segment is "**" */
    bool dot;      /* the segment text starts with '.' */
    struct tok *toks;
    size_t ntoks;
    struct cls *classes;
    size_t nclasses;
};

struct alt {
    bool never; /* trailing '/' not after "**": matches no file */
    struct seg *segs;
    size_t nsegs;
    size_t nliteral; /* segments that are not "**" */
    bool has_globstar;
};

struct glob_pat {
    bool basename;
    bool dot_dirs;
    struct alt *alts;
    size_t nalts;
};

/* ---- small vectors ---- */

struct strvec {
    char **v;
    size_t n, cap;
};

static void strvec_free(struct strvec *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    memset(sv, 0, sizeof(*sv));
}

static int strvec_push(struct strvec *sv, char *s)
{
    if (!s)
        return -1;
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        char **nv = realloc(sv->v, cap * sizeof(*nv));
        if (!nv) {
            free(s);
            return -1;
        }
        sv->v = nv;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
    return 0;
}

static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *nv = realloc(*v, ncap * elem);
    if (!nv)
        return -1;
    *v = nv;
    *cap = ncap;
    return 0;
}

/* ---- brace expansion ---- */

enum { EXP_OK = 0, EXP_NOMEM = -1, EXP_BROAD = 1 };

struct expander {
    size_t work;
};

static char *concat3(const char *a, size_t al, const char *b, size_t bl, const char *c, size_t cl)
{
    char *s = malloc(al + bl + cl + 1);
    if (!s)
        return NULL;
    memcpy(s, a, al);
    memcpy(s + al, b, bl);
    memcpy(s + al + bl, c, cl);
    s[al + bl + cl] = '\0';
    return s;
}

/* Index of the '}' closing the group opened at start, or -1. */
static long group_end(const char *p, size_t len, size_t start)
{
    long depth = 0;
    for (size_t i = start; i < len; i++) {
        if (p[i] == '{')
            depth++;
        else if (p[i] == '}' && --depth == 0)
            return (long)i;
    }
    return -1;
}

static int expand(struct expander *ex, const char *p, size_t len, int depth, struct strvec *out)
{
    if (depth > GLOB_MAX_DEPTH)
        return EXP_BROAD;
    ex->work += len;
    if (ex->work > GLOB_MAX_WORK)
        return EXP_BROAD;
    const char *open = memchr(p, '{', len);
    long end = open ? group_end(p, len, (size_t)(open - p)) : -1;
    if (end < 0)
        return strvec_push(out, ab_strndup(p, len)) ? EXP_NOMEM : EXP_OK;
    size_t start = (size_t)(open - p);
    const char *body = p + start + 1;
    size_t blen = (size_t)end - start - 1;
    const char *suffix = p + end + 1;
    size_t slen = len - (size_t)end - 1;

    /* Top-level commas of the body. */
    size_t nparts = 1;
    long d = 0;
    for (size_t i = 0; i < blen; i++) {
        if (body[i] == '{')
            d++;
        else if (body[i] == '}')
            d--;
        else if (body[i] == ',' && d == 0)
            nparts++;
    }
    int rc = EXP_OK;
    if (nparts < 2) {
        /* One-element group: literal, but the rest may still expand. */
        struct strvec tails = {0};
        rc = expand(ex, suffix, slen, depth + 1, &tails);
        for (size_t t = 0; t < tails.n && !rc; t++) {
            char *head = concat3(p, start + 1, body, blen, "}", 1);
            char *s =
                head ? concat3(head, strlen(head), tails.v[t], strlen(tails.v[t]), "", 0) : NULL;
            free(head);
            if (strvec_push(out, s))
                rc = EXP_NOMEM;
        }
        strvec_free(&tails);
        return rc;
    }
    size_t pstart = 0;
    d = 0;
    for (size_t i = 0; i <= blen && !rc; i++) {
        if (i < blen) {
            if (body[i] == '{')
                d++;
            else if (body[i] == '}')
                d--;
            if (!(body[i] == ',' && d == 0))
                continue;
        }
        /* part = body[pstart, i) */
        char *ps = concat3(body + pstart, i - pstart, suffix, slen, "", 0);
        if (!ps)
            return EXP_NOMEM;
        struct strvec tails = {0};
        rc = expand(ex, ps, strlen(ps), depth + 1, &tails);
        free(ps);
        for (size_t t = 0; t < tails.n && !rc; t++) {
            char *s = concat3(p, start, tails.v[t], strlen(tails.v[t]), "", 0);
            if (strvec_push(out, s))
                rc = EXP_NOMEM;
            else if (out->n > GLOB_MAX_EXPANSIONS)
                rc = EXP_BROAD;
            else if ((ex->work += start + strlen(tails.v[t])) > GLOB_MAX_WORK)
                rc = EXP_BROAD;
        }
        strvec_free(&tails);
        pstart = i + 1;
    }
    return rc;
}

/* "[^" -> "[!" with the helper's bracket scan: the closing ']' is searched from the second
 * character after '[' so a ']' right after '[' stays literal. */
static char *normalize_classes(const char *p)
{
    size_t len = strlen(p);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    while (i < len) {
        if (p[i] != '[') {
            out[o++] = p[i++];
            continue;
        }
        size_t after = i + 1;
        if (after < len)
            pyrepr_next_cp(p, len, &after); /* skip one whole character */
        const char *close = after <= len ? memchr(p + after, ']', len - after) : NULL;
        if (!close) {
            memcpy(out + o, p + i, len - i);
            o += len - i;
            break;
        }
        size_t c = (size_t)(close - p);
        out[o++] = '[';
        if (p[i + 1] == '^') {
            out[o++] = '!';
            memcpy(out + o, p + i + 2, c - i - 2);
            o += c - i - 2;
        } else {
            memcpy(out + o, p + i + 1, c - i - 1);
            o += c - i - 1;
        }
        out[o++] = ']';
        i = c + 1;
    }
    out[o] = '\0';
    return out;
}

/* ---- segment compilation (fnmatch.translate's rules, on code points) ---- */

static void seg_free(struct seg *s)
{
    for (size_t i = 0; i < s->nclasses; i++) {
        free(s->classes[i].lits);
        free(s->classes[i].ranges);
    }
    free(s->classes);
    free(s->toks);
    memset(s, 0, sizeof(*s));
}

struct cpstr {
    uint32_t *v;
    size_t n, cap;
};

static int cp_push(struct cpstr *c, uint32_t cp)
{
    if (grow((void **)&c->v, &c->cap, c->n, sizeof(uint32_t)))
        return -1;
    c->v[c->n++] = cp;
    return 0;
}

static int cls_lit(struct cls *k, uint32_t cp)
{
    size_t cap = k->nlits; /* exact-fit growth: classes are tiny */
    uint32_t *nv = realloc(k->lits, (cap + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    k->lits = nv;
    k->lits[k->nlits++] = cp;
    return 0;
}

static int cls_range(struct cls *k, uint32_t lo, uint32_t hi)
{
    uint32_t(*nv)[2] = realloc(k->ranges, (k->nranges + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    k->ranges = nv;
    k->ranges[k->nranges][0] = lo;
    k->ranges[k->nranges][1] = hi;
    k->nranges++;
    return 0;
}

/* Build the class for pat[i, j) (between '[' and ']'), following fnmatch.translate. */
static int build_class(const uint32_t *pat, size_t i, size_t j, struct cls *k)
{
    memset(k, 0, sizeof(*k));
    bool has_dash = false;
    for (size_t x = i; x < j; x++)
        if (pat[x] == '-')
            has_dash = true;
    /* Chunks: [start, end) index pairs into a scratch copy, because reversed-range removal
     * splices chunks together. */
    struct cpstr chunks[64];
    size_t nchunks = 0;
    struct cpstr *heap = NULL;
    struct cpstr *ch = chunks;
    size_t chcap = 64;
    int rc = 0;
    if (!has_dash) {
        memset(&ch[0], 0, sizeof(ch[0]));
        for (size_t x = i; x < j && !rc; x++)
            rc = cp_push(&ch[0], pat[x]);
        nchunks = 1;
    } else {
        size_t k0 = (pat[i] == '!') ? i + 2 : i + 1;
        size_t ii = i;
        for (;;) {
            size_t dash = j;
            for (size_t x = k0; x < j; x++) {
                if (pat[x] == '-') {
                    dash = x;
                    break;
                }
            }
            if (dash >= j)
                break;
            if (nchunks == chcap) {
                size_t ncap = chcap * 2;
                struct cpstr *nh = malloc(ncap * sizeof(*nh));
                if (!nh) {
                    rc = -1;
                    break;
                }
                memcpy(nh, ch, nchunks * sizeof(*nh));
                free(heap);
                heap = nh;
                ch = nh;
                chcap = ncap;
            }
            memset(&ch[nchunks], 0, sizeof(ch[0]));
            for (size_t x = ii; x < dash && !rc; x++)
                rc = cp_push(&ch[nchunks], pat[x]);
            nchunks++;
            ii = dash + 1;
            k0 = dash + 3;
        }
        if (!rc) {
            if (ii < j) {
                if (nchunks == chcap) {
                    size_t ncap = chcap * 2;
                    struct cpstr *nh = malloc(ncap * sizeof(*nh));
                    if (!nh)
                        rc = -1;
                    else {
                        memcpy(nh, ch, nchunks * sizeof(*nh));
                        free(heap);
                        heap = nh;
                        ch = nh;
                        chcap = ncap;
                    }
                }
                if (!rc) {
                    memset(&ch[nchunks], 0, sizeof(ch[0]));
                    for (size_t x = ii; x < j && !rc; x++)
                        rc = cp_push(&ch[nchunks], pat[x]);
                    nchunks++;
                }
            } else if (nchunks) {
                rc = cp_push(&ch[nchunks - 1], '-');
            }
        }
        /* Remove reversed ranges: chunks[k-1] = chunks[k-1][:-1] + chunks[k][1:]. (Python
         * would raise IndexError on an emptied chunk; we simply stop merging there.) */
        for (size_t x = nchunks; !rc && x-- > 1;) {
            struct cpstr *a = &ch[x - 1], *b = &ch[x];
            if (!a->n || !b->n || a->v[a->n - 1] <= b->v[0])
                continue;
            a->n--;
            for (size_t y = 1; y < b->n && !rc; y++)
                rc = cp_push(a, b->v[y]);
            free(b->v);
            memmove(&ch[x], &ch[x + 1], (nchunks - x - 1) * sizeof(ch[0]));
            nchunks--;
        }
    }
    if (rc)
        goto out;
    /* stuff = chunks joined with '-' */
    size_t total = 0;
    for (size_t x = 0; x < nchunks; x++)
        total += ch[x].n;
    total += nchunks ? nchunks - 1 : 0;
    if (total == 0) {
        k->never = true;
        goto out;
    }
    if (total == 1 && ch[0].n == 1 && ch[0].v[0] == '!') {
        k->any = true;
        goto out;
    }
    size_t skip = 0; /* the '!' of a negated class */
    if (ch[0].n && ch[0].v[0] == '!') {
        k->negate = true;
        skip = 1;
    }
    /* The class text is chunk0 '-' chunk1 '-' ...: each join is a range from the last
     * character of one chunk to the first of the next; everything else is literal. */
    bool prev_range = false;
    for (size_t x = 0; x < nchunks && !rc; x++) {
        const struct cpstr *c = &ch[x];
        bool has_next = x + 1 < nchunks;
        size_t from = (x == 0) ? skip : (prev_range ? 1 : 0);
        bool range = has_next && c->n > from && ch[x + 1].n > 0;
        size_t to = range ? c->n - 1 : c->n;
        for (size_t y = from; y < to && !rc; y++)
            rc = cls_lit(k, c->v[y]);
        if (has_next && !rc)
            rc = range ? cls_range(k, c->v[c->n - 1], ch[x + 1].v[0]) : cls_lit(k, '-');
        prev_range = range;
    }
out:
    for (size_t x = 0; x < nchunks; x++)
        free(ch[x].v);
    free(heap);
    return rc;
}

static int seg_compile(const char *text, size_t len, bool allow_globstar, struct seg *s)
{
    memset(s, 0, sizeof(*s));
    s->dot = len && text[0] == '.';
    if (allow_globstar && len == 2 && text[0] == '*' && text[1] == '*') {
        s->globstar = true;
        return 0;
    }
    struct cpstr pat = {0};
    int rc = 0;
    for (size_t i = 0; i < len && !rc;)
        rc = cp_push(&pat, pyrepr_next_cp(text, len, &i));
    size_t tcap = 0, ccap = 0;
    size_t n = pat.n, i = 0;
    while (!rc && i < n) {
        uint32_t c = pat.v[i++];
        struct tok t = {.kind = TOK_LIT, .cp = c};
        if (c == '*') {
            if (s->ntoks && s->toks[s->ntoks - 1].kind == TOK_STAR)
                continue;
            t.kind = TOK_STAR;
        } else if (c == '?') {
            t.kind = TOK_ANY;
        } else if (c == '[') {
            size_t j = i;
            if (j < n && pat.v[j] == '!')
                j++;
            if (j < n && pat.v[j] == ']')
                j++;
            while (j < n && pat.v[j] != ']')
                j++;
            if (j < n) {
                if (grow((void **)&s->classes, &ccap, s->nclasses, sizeof(struct cls))) {
                    rc = -1;
                    break;
                }
                rc = build_class(pat.v, i, j, &s->classes[s->nclasses]);
                if (rc)
                    break;
                t.kind = TOK_CLASS;
                t.cls = s->nclasses++;
                i = j + 1;
            } /* else: a literal '[' */
        }
        if (grow((void **)&s->toks, &tcap, s->ntoks, sizeof(struct tok))) {
            rc = -1;
            break;
        }
        s->toks[s->ntoks++] = t;
    }
    free(pat.v);
    if (rc)
        seg_free(s);
    return rc;
}

static bool cls_match(const struct cls *k, uint32_t c)
{
    if (k->never)
        return false;
    if (k->any)
        return true;
    bool in = false;
    for (size_t i = 0; i < k->nlits && !in; i++)
        in = k->lits[i] == c;
    for (size_t i = 0; i < k->nranges && !in; i++)
        in = c >= k->ranges[i][0] && c <= k->ranges[i][1];
    return in != k->negate;
}

static bool tok_match(const struct seg *s, const struct tok *t, uint32_t c)
{
    switch (t->kind) {
    case TOK_LIT:
        return t->cp == c;
    case TOK_ANY:
        return true;
    case TOK_CLASS:
        return cls_match(&s->classes[t->cls], c);
    case TOK_STAR:
        return false;
    }
    return false;
}

/* Iterative wildcard match with a single backtrack point (enough when '*' is the only
 * variable-length token): O(len(name) * ntoks), no recursion. */
static bool seg_match_cps(const struct seg *s, const uint32_t *name, size_t n)
{
    size_t p = 0, x = 0, star = (size_t)-1, mark = 0;
    while (x < n) {
        if (p < s->ntoks && s->toks[p].kind != TOK_STAR && tok_match(s, &s->toks[p], name[x])) {
            p++;
            x++;
        } else if (p < s->ntoks && s->toks[p].kind == TOK_STAR) {
            star = p++;
            mark = x;
        } else if (star != (size_t)-1) {
            p = star + 1;
            x = ++mark;
        } else {
            return false;
        }
    }
    while (p < s->ntoks && s->toks[p].kind == TOK_STAR)
        p++;
    return p == s->ntoks;
}

static bool seg_match(const struct seg *s, const char *name, size_t len)
{
    uint32_t stackbuf[256];
    uint32_t *cps = len <= 256 ? stackbuf : malloc(len * sizeof(uint32_t));
    if (!cps)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < len;)
        cps[n++] = pyrepr_next_cp(name, len, &i);
    bool ok = seg_match_cps(s, cps, n);
    if (cps != stackbuf)
        free(cps);
    return ok;
}

/* ---- alternatives ---- */

static void alt_free(struct alt *a)
{
    for (size_t i = 0; i < a->nsegs; i++)
        seg_free(&a->segs[i]);
    free(a->segs);
    memset(a, 0, sizeof(*a));
}

static int alt_compile(const char *cand, bool basename, struct alt *a)
{
    memset(a, 0, sizeof(*a));
    if (basename) {
        a->segs = calloc(1, sizeof(struct seg));
        if (!a->segs)
            return -1;
        a->nsegs = 1;
        a->nliteral = 1;
        /* "**" in a basename pattern is just two stars (fnmatch) */
        return seg_compile(cand, strlen(cand), false, &a->segs[0]);
    }
    while (*cand == '/')
        cand++;
    size_t len = strlen(cand);
    /* segments = cand.split('/'); pat_parts = non-empty ones */
    size_t nseg_raw = 1;
    for (size_t i = 0; i < len; i++)
        if (cand[i] == '/')
            nseg_raw++;
    bool trailing_empty = nseg_raw > 1 && len && cand[len - 1] == '/';
    a->segs = calloc(nseg_raw, sizeof(struct seg));
    if (!a->segs)
        return -1;
    size_t start = 0;
    bool last_was_globstar = false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && cand[i] != '/')
            continue;
        size_t sl = i - start;
        if (sl) {
            bool gs = sl == 2 && cand[start] == '*' && cand[start + 1] == '*';
            if (!(gs && last_was_globstar)) { /* consecutive "**" collapse */
                if (seg_compile(cand + start, sl, true, &a->segs[a->nsegs]))
                    return -1;
                a->nsegs++;
                if (gs)
                    a->has_globstar = true;
                else
                    a->nliteral++;
            }
            last_was_globstar = gs;
        }
        start = i + 1;
    }
    if (trailing_empty && (a->nsegs == 0 || !a->segs[a->nsegs - 1].globstar))
        a->never = true;
    return 0;
}

static bool dot_name(const char *s, size_t len)
{
    return len && s[0] == '.';
}

static bool alt_match_path(const struct alt *a, const char *rel)
{
    if (a->never)
        return false;
    /* rel_parts: non-empty segments ("" and "." give none) */
    const char *partv_stack[64];
    size_t partl_stack[64];
    const char **pv = partv_stack;
    size_t *pl = partl_stack;
    size_t R = 0, cap = 64;
    bool ok = false;
    unsigned char *memo = NULL;
    bool *nodot_suffix = NULL;
    if (strcmp(rel, ".") != 0) {
        size_t start = 0, len = strlen(rel);
        for (size_t i = 0; i <= len; i++) {
            if (i < len && rel[i] != '/')
                continue;
            if (i > start) {
                if (R == cap) {
                    size_t ncap = cap * 2;
                    const char **npv = malloc(ncap * sizeof(*npv));
                    size_t *npl = malloc(ncap * sizeof(*npl));
                    if (!npv || !npl) {
                        free(npv);
                        free(npl);
                        goto out;
                    }
                    memcpy(npv, pv, R * sizeof(*npv));
                    memcpy(npl, pl, R * sizeof(*npl));
                    if (pv != partv_stack) {
                        free(pv);
                        free(pl);
                    }
                    pv = npv;
                    pl = npl;
                    cap = ncap;
                }
                pv[R] = rel + start;
                pl[R] = i - start;
                R++;
            }
            start = i + 1;
        }
    }
    size_t P = a->nsegs;
    if (a->nliteral > R || (!a->has_globstar && a->nliteral != R))
        goto out;
    memo = calloc((R + 1) * (P + 1), 1); /* M[ri][pi] at ri * (P+1) + pi */
    nodot_suffix = calloc(R + 1, sizeof(bool));
    if (!memo || !nodot_suffix)
        goto out;
    nodot_suffix[R] = true;
    for (size_t r = R; r-- > 0;)
        nodot_suffix[r] = nodot_suffix[r + 1] && !dot_name(pv[r], pl[r]);
#define M(r, p) memo[(r) * (P + 1) + (p)]
    for (size_t r = R + 1; r-- > 0;) {
        for (size_t p = P + 1; p-- > 0;) {
            bool v;
            if (p == P) {
                v = r == R;
            } else if (a->segs[p].globstar) {
                if (p + 1 == P)
                    v = r < R && nodot_suffix[r];
                else
                    v = M(r, p + 1) || (r < R && !dot_name(pv[r], pl[r]) && M(r + 1, p));
            } else {
                const struct seg *s = &a->segs[p];
                v = r < R && M(r + 1, p + 1) && !(dot_name(pv[r], pl[r]) && !s->dot) &&
                    seg_match(s, pv[r], pl[r]);
            }
            M(r, p) = v;
        }
    }
    ok = M(0, 0);
#undef M
out:
    free(memo);
    free(nodot_suffix);
    if (pv != partv_stack) {
        free(pv);
        free(pl);
    }
    return ok;
}

/* ---- public API ---- */

void glob_free(struct glob_pat *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nalts; i++)
        alt_free(&g->alts[i]);
    free(g->alts);
    free(g);
}

ab_status glob_compile(const char *pattern, struct glob_pat **out, struct ab_err *err)
{
    *out = NULL;
    size_t len = strlen(pattern);
    if (len > GLOB_PATTERN_MAX)
        return ab_err_set(err, AB_INVAL, "invalid_pattern");
    if (paths_has_dotdot(pattern, len))
        return ab_err_set(err, AB_INVAL, "invalid_pattern");
    struct glob_pat *g = calloc(1, sizeof(*g));
    if (!g)
        return ab_err_set(err, AB_NOMEM, "out of memory");
    g->basename = strchr(pattern, '/') == NULL;
    struct strvec cands = {0};
    struct expander ex = {0};
    int erc = expand(&ex, pattern, len, 0, &cands);
    ab_status rc = AB_OK;
    if (erc == EXP_BROAD) {
        rc = ab_err_set(err, AB_LIMIT, "pattern_too_broad");
        goto out;
    }
    if (erc) {
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
        goto out;
    }
    g->alts = calloc(cands.n, sizeof(struct alt));
    if (!g->alts && cands.n) {
        rc = ab_err_set(err, AB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cands.n; i++) {
        char *norm = normalize_classes(cands.v[i]);
        int crc = norm ? alt_compile(norm, g->basename, &g->alts[i]) : -1;
        free(norm);
        g->nalts = i + 1;
        if (crc) {
            rc = ab_err_set(err, AB_NOMEM, "out of memory");
            goto out;
        }
    }
    /* A path pattern can only reach into a dot directory through a segment that starts
     * with '.'; a basename pattern matches at any depth. */
    g->dot_dirs = g->basename;
    for (size_t i = 0; i < g->nalts && !g->dot_dirs; i++)
        for (size_t s = 0; s < g->alts[i].nsegs; s++)
            if (g->alts[i].segs[s].dot)
                g->dot_dirs = true;
out:
    strvec_free(&cands);
    if (rc) {
        glob_free(g);
        return rc;
    }
    *out = g;
    return AB_OK;
}

bool glob_match(const struct glob_pat *g, const char *relpath)
{
    if (g->basename) {
        const char *slash = strrchr(relpath, '/');
        const char *name = slash ? slash + 1 : relpath;
        size_t nl = strlen(name);
        for (size_t i = 0; i < g->nalts; i++) {
            const struct seg *s = &g->alts[i].segs[0];
            if (dot_name(name, nl) && !s->dot)
                continue;
            if (seg_match(s, name, nl))
                return true;
        }
        return false;
    }
    for (size_t i = 0; i < g->nalts; i++)
        if (alt_match_path(&g->alts[i], relpath))
            return true;
    return false;
}

bool glob_is_basename(const struct glob_pat *g)
{
    return g->basename;
}

bool glob_may_match_in_dot_dirs(const struct glob_pat *g)
{
    return g->dot_dirs;
}

size_t glob_alternatives(const struct glob_pat *g)
{
    return g->nalts;
}

bool glob_fnmatch(const char *pattern, const char *name)
{
    struct seg s;
    if (seg_compile(pattern, strlen(pattern), false, &s))
        return false;
    bool ok = seg_match(&s, name, strlen(name));
    seg_free(&s);
    return ok;
}
