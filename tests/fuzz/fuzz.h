/*
 * fuzz.h - the libFuzzer entry points every target in tests/fuzz/ defines, declared once so
 * the targets build under -Wmissing-prototypes, plus small helpers shared by the targets.
 *
 * A target is built two ways (tests/fuzz/CMakeLists.txt): with clang and -fsanitize=fuzzer
 * (AGENTBOX_FUZZ=ON: libFuzzer's main drives it), and with any compiler against
 * replay_main.c, which runs each file of the seed corpus once, so the corpus is a regression
 * suite in every build, including the gcc ASan+UBSan one.
 */
#ifndef AB_TEST_FUZZ_H
#define AB_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test does not hold: report and abort, so libFuzzer (or
 * the replay driver) records the input as a crash. */
#define FUZZ_CHECK(cond, ...)                                                                    \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fprintf(stderr, "\n");                                                               \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

#endif
