/*
 * glob.h - the file-name pattern language of the glob tool and of grep's `glob` filter.
 *
 * The semantics are deepagents 0.7.8's sandbox glob helper (deepagents-contract.md 2.6),
 * which agents are told about in the tool descriptions:
 *
 *   - A pattern without "/" matches the *basename* at any depth ("*.py" matches
 *     "src/app/main.py", also under dot directories).
 *   - A pattern with "/" matches the path relative to the search root, segment by segment;
 *     a "**" segment matches zero or more segments; a leading "/" anchors to the root (it
 *     is stripped; the match is always anchored); empty segments are ignored; a trailing "/"
 *     never matches a file (except after "**", which absorbs it).
 *   - Within a segment: "*" (any run of characters), "?" (one character), "[abc]", "[a-z]",
 *     "[!abc]" and "[^abc]" (Python fnmatch rules, including its treatment of odd brackets:
 *     an unclosed "[" is literal, "[]]" is the class of "]", reversed ranges such as
 *     "[z-a]" are dropped, and a class left empty matches nothing).
 *     Backslash is an ordinary character (fnmatch has no escapes).
 *   - "{a,b}" alternatives, nested, expanded before matching; an unbalanced "{" and a
 *     one-element group "{a}" are literal. More than GLOB_MAX_EXPANSIONS alternatives:
 *     AB_LIMIT ("pattern_too_broad").
 *   - Leading-dot names match only a pattern segment that itself starts with "."; "**"
 *     never enters or matches a dot segment.
 *   - A ".." segment anywhere: AB_INVAL ("invalid_pattern").
 *   - Case-sensitive; characters are code points (invalid UTF-8 bytes are U+DCxx, as in
 *     Python's surrogateescape), so "?" matches one "é" and one stray byte alike.
 *
 * Work is bounded: brace expansion stops at the limit, segment matching is the iterative
 * star-backtracking matcher (O(name * segment)), and "**" is matched with a memoised table
 * over (path segment, pattern segment), so no pattern can make matching exponential.
 */
#ifndef AB_CORE_GLOB_H
#define AB_CORE_GLOB_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

#define GLOB_MAX_EXPANSIONS 1000
#define GLOB_PATTERN_MAX    4096 /* bytes */

struct glob_pat;

/* Compile pattern (NUL-terminated). *out is new (glob_free). AB_INVAL: a ".." segment or an
 * overlong pattern; AB_LIMIT: brace expansion past GLOB_MAX_EXPANSIONS; AB_NOMEM. */
ab_status glob_compile(const char *pattern, struct glob_pat **out, struct ab_err *err);
void glob_free(struct glob_pat *g);

/* Does relpath ('/'-separated, relative to the search root, no leading '/') match? */
bool glob_match(const struct glob_pat *g, const char *relpath);

/* true when the pattern is a basename pattern (no '/' in it). */
bool glob_is_basename(const struct glob_pat *g);

/* false when no match can lie below a directory whose name starts with '.', so a walk may
 * skip such directories. */
bool glob_may_match_in_dot_dirs(const struct glob_pat *g);

/* Number of alternatives after brace expansion (for tests and diagnostics). */
size_t glob_alternatives(const struct glob_pat *g);

/* Python's fnmatch.fnmatchcase(name, pattern) on one segment (no special '/', no braces,
 * no dot rule). Exposed for tests. */
bool glob_fnmatch(const char *pattern, const char *name);

#endif
