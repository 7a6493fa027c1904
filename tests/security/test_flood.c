/*
 * Output floods through the whole server: `execute` of a command that writes 1 GiB, over
 * stdio, with a progress token (so the output is also streamed as notifications). The
 * result keeps the configured cap and says it was truncated; the notifications stop
 * carrying text at the cap and then report only a byte count, at most once per MiB, so the
 * flood does not become a flood of messages; and the server process's peak RSS grows by a
 * bounded amount, however much the command writes. Measured from outside, on the real
 * binary (/proc/PID/status).
 */
#include "t.h"

#include <jansson.h>
#include <sys/stat.h>

#include "base/util.h"
#include "support/mcp_stdio.h"
#include "support/proc.h"

static void flood_through_execute(void)
{
    char dir[] = "/tmp/ab-flood-XXXXXX";
    T_ASSERT(mkdtemp(dir) != NULL);
    const char *sets[] = {"sandbox.pool.size=0", "tools.execute.max_output=1MiB", NULL};
    struct ms_srv s;
    ms_start(&s, NULL, dir, "flood", sets, NULL);
    free(ms_tool_ok(&s, "execute", json_pack("{s:s}", "command", "true"))); /* warm up */
    long hwm0 = tp_status_kib(s.pid, "VmHWM");
    T_ASSERT(hwm0 > 0);
    int id = ms_request(&s, "tools/call",
                        json_pack("{s:s,s:{s:s,s:i},s:{s:s}}", "name", "execute", "arguments",
                                  "command", "head -c 1073741824 /dev/zero | tr '\\0' x",
                                  "timeout", 600, "_meta", "progressToken", "flood"));
    size_t notes = 0, text_bytes = 0, counted = 0;
    json_t *result = NULL;
    while (!result) {
        json_t *m = ms_recv(&s, 600000);
        if (!m)
            T_FAIL("the server closed its output during the flood");
        const char *method = json_string_value(json_object_get(m, "method"));
        if (method && strcmp(method, "notifications/progress") == 0) {
            notes++;
            const char *msg =
                json_string_value(json_object_get(json_object_get(m, "params"), "message"));
            if (msg && strstr(msg, "[output limit reached"))
                counted++;
            else if (msg)
                text_bytes += strlen(msg);
        } else if (json_integer_value(json_object_get(m, "id")) == id) {
            result = json_incref(json_object_get(m, "result"));
        }
        json_decref(m);
    }
    T_ASSERT(result != NULL);
    const json_t *sc = json_object_get(result, "structuredContent");
    T_ASSERT(json_is_true(json_object_get(sc, "truncated")));
    T_EQ_INT(json_integer_value(json_object_get(sc, "exit_code")), 0);
    T_EQ_INT(json_string_length(json_object_get(sc, "output")), 1 << 20);
    T_ASSERT(strstr(ms_text(result), "[Output was truncated due to size limits]") != NULL);
    json_decref(result);
    /* At most the cap as text; past it, byte counts at most once per MiB (the helper sends a
     * sign of life every 250 ms past the cap, so far fewer arrive in practice). */
    T_ASSERT(text_bytes <= (1u << 20));
    T_ASSERT(counted <= 1024);
    T_ASSERT(notes <= 2048);
    long grown = (tp_status_kib(s.pid, "VmHWM") - hwm0) / 1024;
#ifdef AGENTBOX_SANITIZE
    const long bound = 512; /* ASan's quarantine holds freed chunks (256 MiB by default) */
#else
    const long bound = 64;
#endif
    fprintf(stderr, "flood: %zu progress notifications (%zu bytes of text, %zu counts), server "
                    "peak RSS +%ld MiB\n",
            notes, text_bytes, counted, grown);
    if (grown > bound)
        T_FAIL("the server's peak RSS grew by %ld MiB during 1 GiB of output", grown);
    int st = ms_stop(&s);
    T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    T_EQ_INT(system(cmd), 0);
}

static const struct t_case cases[] = {
    T_CASE(flood_through_execute),
    {0},
};

T_MAIN(cases)
