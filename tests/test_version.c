/* The version header, the library's nb_version() and CMake's project(VERSION) agree. */
#include <stdlib.h>

#include "testutil.h"

/* NB_TEST_PROJECT_VERSION is CMake's PROJECT_VERSION, "MAJOR.MINOR.PATCH". */
static void test_header_matches_project(void **state)
{
    (void)state;
    assert_string_equal(NB_VERSION_STRING, NB_TEST_PROJECT_VERSION);
    char *end;
    long major = strtol(NB_TEST_PROJECT_VERSION, &end, 10);
    assert_int_equal(*end, '.');
    long minor = strtol(end + 1, &end, 10);
    assert_int_equal(*end, '.');
    long patch = strtol(end + 1, &end, 10);
    assert_int_equal(*end, '\0');
    assert_int_equal(NB_VERSION_MAJOR, major);
    assert_int_equal(NB_VERSION_MINOR, minor);
    assert_int_equal(NB_VERSION_PATCH, patch);
    assert_int_equal(NB_VERSION, major * 10000 + minor * 100 + patch);
}

/* The SONAME carries the major version: NB_TEST_SOVERSION is the library's SOVERSION. */
static void test_soversion_is_major(void **state)
{
    (void)state;
    assert_int_equal(NB_VERSION_MAJOR, NB_TEST_SOVERSION);
}

static void test_library_matches_header(void **state)
{
    (void)state;
    assert_non_null(nb_version());
    assert_string_equal(nb_version(), NB_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header_matches_project, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_soversion_is_major, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_library_matches_header, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("version", tests, NULL, NULL);
}
