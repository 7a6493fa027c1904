/*
 * proc.h - test support: run the agentbox binary as a child with pipes, feed it input,
 * collect output, with a hard deadline (a hung server fails the test instead of hanging it).
 */
#ifndef AB_TEST_PROC_H
#define AB_TEST_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "base/buf.h"

/* Path of the agentbox binary under test ($AGENTBOX_BIN, set by ctest). */
const char *tp_agentbox_bin(void);
/* Path of the source tree ($AGENTBOX_SOURCE_DIR). */
const char *tp_source_dir(void);

/* Run argv (argv[0] is the program path), write input to its stdin then close it, and
 * collect stdout into out and stderr into err_out (either may be NULL) until the process
 * exits or timeout_ms passes (then it is killed and -2 returned). Returns the exit status,
 * or 128+signal. */
int tp_run(char *const argv[], const char *input, size_t input_len, struct buf *out,
           struct buf *err_out, int timeout_ms);

/* A "Field:  N kB" value of /proc/PID/status (pid 0: this process), e.g. "VmHWM"; -1 when
 * the process or the field is not there. */
long tp_status_kib(pid_t pid, const char *field);

/* Descriptors open in this process (among 0..1023): compare before and after to find a
 * leak. */
int tp_count_fds(void);

/* Read a whole file into out (capped by out's max). 0 on success. */
int tp_read_file(const char *path, struct buf *out);

#endif
