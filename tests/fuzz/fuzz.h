/*
 * What the fuzz targets share: CHECK, which aborts (so that libFuzzer or the replay main
 * reports the input) with the target's name, the condition and the last error; and the
 * check of an error's form, one line "fn: cause".
 * A target defines FUZZ_NAME ("fuzz_idx") before including this.
 */
#ifndef NABLA_FUZZ_H
#define NABLA_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s: check failed: %s (%s)\n", FUZZ_NAME, #cond,                       \
                    nb_last_error()->message);                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Whether the last error reads as one line "<prefix>cause", cause not empty. */
static inline bool fuzz_one_line(const char *prefix)
{
    const char *m = nb_last_error()->message;
    size_t n = strlen(prefix);
    return !strncmp(m, prefix, n) && m[n] != '\0' && !strchr(m, '\n');
}

#endif /* NABLA_FUZZ_H */
