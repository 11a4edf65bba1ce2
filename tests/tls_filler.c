/*
 * A library that takes 1 KiB of the static TLS area, as libraries built with the
 * initial-exec model do (libgomp, some GL drivers): tests/static_tls.c loads it before
 * libnabla, which must still find room there.
 */
#define FILLER_BYTES 1024

__attribute__((tls_model("initial-exec"))) _Thread_local char nb_test_tls_filler[FILLER_BYTES];

char *nb_test_tls_fill(void);

char *nb_test_tls_fill(void)
{
    for (int i = 0; i < FILLER_BYTES; i++) nb_test_tls_filler[i] = (char)i;
    return nb_test_tls_filler;
}
