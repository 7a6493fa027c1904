/*
 * fuzz_config.c - the configuration loaders (config/config.c): the YAML file (libyaml),
 * AGENTBOX_* environment variables and --set KEY=VALUE, then the cross-key checks.
 *
 * Input: a selector byte, then the text. Selector % 4: 0-1 YAML, 2 "--set" lines, 3
 * environment lines. When a configuration loads and validates, the target checks that what
 * `agentbox config` prints is itself a configuration that loads back to the same values
 * (dump -> load -> dump is a fixed point), so the printed configuration can be trusted and
 * reused. Token values are redacted in the dump, so the auth.tokens line is left out of the
 * comparison.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/buf.h"
#include "config/config.h"
#include "fuzz.h"

/* The dump of cfg without its auth.tokens line, into out. */
static void dump(const struct config *cfg, struct buf *out)
{
    int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0, "memfd_create");
    cfg_dump(cfg, fd);
    off_t end = lseek(fd, 0, SEEK_END);
    char *text = malloc((size_t)end + 1);
    FUZZ_CHECK(pread(fd, text, (size_t)end, 0) == end, "pread");
    text[end] = '\0';
    close(fd);
    buf_reset(out);
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        FUZZ_CHECK(nl, "the dump ends without a newline");
        if (strncmp(line, "auth.tokens:", 12) != 0)
            buf_append(out, line, (size_t)(nl - line + 1));
    }
    free(text);
}

static void check_roundtrip(const struct config *cfg)
{
    struct buf first, second;
    buf_init(&first, 16u << 20);
    buf_init(&second, 16u << 20);
    dump(cfg, &first);
    struct config again;
    struct ab_err err;
    FUZZ_CHECK(cfg_init_defaults(&again, &err) == AB_OK, "defaults");
    ab_status rc = cfg_load_string(&again, first.data, first.len, "dump", &err);
    FUZZ_CHECK(rc == AB_OK, "the printed configuration does not load: %s\n--- dump:\n%s", err.msg,
               first.data);
    dump(&again, &second);
    FUZZ_CHECK(first.len == second.len && memcmp(first.data, second.data, first.len) == 0,
               "dump -> load -> dump differs:\n--- first:\n%s\n--- second:\n%s", first.data,
               second.data);
    cfg_cleanup(&again);
    buf_cleanup(&first);
    buf_cleanup(&second);
}

/* Split text into lines (NUL-terminated in place); returns a NULL-terminated array (new). */
static char **lines(char *text)
{
    size_t n = 1;
    for (char *p = text; *p; p++)
        n += *p == '\n';
    char **v = calloc(n + 1, sizeof(char *));
    size_t i = 0;
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        v[i++] = line;
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    unsigned mode = data[0] % 4;
    size_t len = size - 1;
    char *text = malloc(len + 1);
    memcpy(text, data + 1, len);
    text[len] = '\0';

    struct config cfg;
    struct ab_err err;
    FUZZ_CHECK(cfg_init_defaults(&cfg, &err) == AB_OK, "defaults");
    ab_status rc = AB_OK;
    if (mode <= 1) {
        rc = cfg_load_string(&cfg, text, len, "fuzz.yaml", &err);
    } else if (memchr(text, '\0', len) == NULL) {
        char **v = lines(text);
        if (mode == 2) {
            for (size_t i = 0; v[i] && !rc; i++) {
                char *eq = strchr(v[i], '=');
                if (!eq)
                    continue;
                *eq = '\0';
                rc = cfg_set(&cfg, v[i], eq + 1, &err);
            }
        } else {
            rc = cfg_apply_env(&cfg, v, &err);
        }
        free(v);
    }
    if (rc) {
        FUZZ_CHECK(err.msg[0], "status %d without a message", rc);
    } else if (cfg_validate(&cfg, &err) == AB_OK) {
        check_roundtrip(&cfg);
    }
    cfg_cleanup(&cfg);
    free(text);
    return 0;
}
