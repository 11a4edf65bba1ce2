/*
 * Saves whose last steps fail: the sync of the temporary file, or its rename over the old
 * file. This program defines fsync and rename itself, so that libnabla's calls come here
 * (the executable's definitions come first in the dynamic linker's search, and a static
 * library's calls bind to them at link time); each passes the call on to the C library's
 * unless a test asks it to fail. A failed save reports NB_EIO with the system's reason, leaves
 * the old files byte for byte as they were and no temporary file; nb_idx_save's two files are
 * replaced both or neither, or the error says which could not be put back. link is defined
 * here too, to refuse the hard link that keeps an old file while a pair is renamed, and
 * unlink, to refuse removing a file the pair made.
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

/* The call of each kind (1 = the first) that fails with EIO from now on, 0 for none; renames
 * fail from fail_rename_at for fail_renames calls. */
static int fail_fsync_at, fail_rename_at, fail_renames = 1, fsyncs, renames;

static void *real(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) abort();
    return f;
}

int fsync(int fd)
{
    static int (*next)(int);
    if (!next) *(void **)&next = real("fsync");
    if (fail_fsync_at && ++fsyncs == fail_fsync_at) {
        errno = EIO;
        return -1;
    }
    return next(fd);
}

int rename(const char *from, const char *to)
{
    static int (*next)(const char *, const char *);
    if (!next) *(void **)&next = real("rename");
    if (fail_rename_at && ++renames >= fail_rename_at && renames < fail_rename_at + fail_renames) {
        errno = EIO;
        return -1;
    }
    return next(from, to);
}

/* Whether link fails (EPERM, as fs.protected_hardlinks refuses a file of another user). */
static bool fail_link;

int link(const char *from, const char *to)
{
    static int (*next)(const char *, const char *);
    if (!next) *(void **)&next = real("link");
    if (fail_link) {
        errno = EPERM;
        return -1;
    }
    return next(from, to);
}

/* Whether unlink fails (EACCES) for a name other than a temporary file's. */
static bool fail_unlink;

int unlink(const char *path)
{
    static int (*next)(const char *);
    if (!next) *(void **)&next = real("unlink");
    if (fail_unlink && !strstr(path, ".tmp")) {
        errno = EACCES;
        return -1;
    }
    return next(path);
}

static void fail_at(int fsync_call, int rename_call)
{
    fail_fsync_at = fsync_call;
    fail_rename_at = rename_call;
    fail_renames = 1;
    fail_link = fail_unlink = false;
    fsyncs = renames = 0;
}

/* The names in dir, sorted, joined by spaces, into out. */
static void listing(const char *dir, char *out, size_t size)
{
    char names[16][256];
    int n = nbt_dir_entries(dir, names, 16);
    out[0] = '\0';
    for (int i = 0; i < n && i < 16; i++) {
        size_t len = strlen(out);
        int w = snprintf(out + len, size - len, "%s%s", i ? " " : "", names[i]);
        if (w < 0 || (size_t)w >= size - len) fail_msg("the names in %s do not fit", dir);
    }
}

static void assert_same_file(const char *path, const unsigned char *want, size_t n)
{
    size_t m = 0;
    unsigned char *b = nbt_read_file(path, &m);
    if (!b) fail_msg("%s is gone", path);
    if (m != n || memcmp(b, want, n)) fail_msg("%s changed (%zu bytes, was %zu)", path, m, n);
    free(b);
}

static nb_state_dict *dict_of(float v)
{
    nb_state_dict *d = nb_state_dict_new();
    nb_tensor *t = nb_full(NB_SHAPE(3, 5), v);
    assert_int_equal(nb_state_dict_set(d, "w", t), NB_OK);
    nb_release(t);
    return d;
}

/* A checkpoint saved over an older one: failing fsync or rename keeps the older one. */
static void test_save_sync_and_rename_fail(void **state)
{
    (void)state;
    char *dir = nbt_make_dir(), path[300], names[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    nb_state_dict *old = dict_of(1.0f), *new = dict_of(2.0f);
    assert_int_equal(nb_safetensors_save(old, path), NB_OK);
    size_t n = 0;
    unsigned char *before = nbt_read_file(path, &n);
    assert_non_null(before);
    for (int kind = 0; kind < 2; kind++) {
        fail_at(kind == 0, kind == 1);
        nb_error_clear();
        assert_int_equal(nb_safetensors_save(new, path), NB_EIO);
        char msg[600];
        if (kind == 0)
            snprintf(msg, sizeof msg, "nb_safetensors_save: cannot sync '%s' to disk: %s", path,
                     strerror(EIO));
        else
            snprintf(msg, sizeof msg,
                     "nb_safetensors_save: renaming the temporary file over '%s' failed: %s", path,
                     strerror(EIO));
        assert_error(NB_EIO, msg);
        fail_at(0, 0);
        assert_same_file(path, before, n);
        listing(dir, names, sizeof names);
        assert_string_equal(names, "model.safetensors");
    }
    assert_int_equal(nb_safetensors_save(new, path), NB_OK); /* and then it goes through */
    nb_state_dict *back = nb_safetensors_load(path);
    assert_non_null(back);
    const float *w = nb_tensor_data_const(nb_state_dict_get(back, "w"));
    assert_non_null(w);
    assert_true(w[14] == 2.0f);
    nb_state_dict_free(back);
    listing(dir, names, sizeof names);
    assert_string_equal(names, "model.safetensors");
    free(before);
    nb_state_dict_free(old);
    nb_state_dict_free(new);
    nbt_rm_dir(dir);
}

/*
 * nb_idx_save's images and labels: both synced before either is renamed, and when the labels'
 * rename fails the images go back to the old ones, or away where there were none: the pair on
 * disk is the old pair or the new one, never a mix.
 */
static void test_idx_save_pair(void **state)
{
    (void)state;
    char *dir = nbt_make_dir(), im[300], lb[300], names[512];
    snprintf(im, sizeof im, "%s/images", dir);
    snprintf(lb, sizeof lb, "%s/labels", dir);
    nb_dataset *ds = nb_mnist_load(NB_TEST_DATA_DIR "/fashion-mini", false);
    assert_non_null(ds);
    const int64_t pick[] = {3, 1, 4};
    nb_dataset *sub = nb_dataset_subset(ds, pick, 3);
    assert_non_null(sub);

    /* no files before: a failing second rename leaves none */
    fail_at(0, 2);
    assert_int_equal(nb_idx_save(ds, im, lb), NB_EIO);
    assert_non_null(strstr(nb_last_error()->message, "renaming the temporary file over"));
    listing(dir, names, sizeof names);
    assert_string_equal(names, "");

    fail_at(0, 0);
    assert_int_equal(nb_idx_save(ds, im, lb), NB_OK);
    size_t ni = 0, nl = 0;
    unsigned char *bi = nbt_read_file(im, &ni), *bl = nbt_read_file(lb, &nl);
    assert_non_null(bi);
    assert_non_null(bl);
    /* each failing step of a save over the pair: the second file's sync (both are synced
     * before the first is renamed), the first rename and the second */
    const int cases[][2] = {{2, 0}, {1, 0}, {0, 1}, {0, 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fail_at(cases[c][0], cases[c][1]);
        nb_error_clear();
        assert_int_equal(nb_idx_save(sub, im, lb), NB_EIO);
        assert_int_equal(nb_last_error()->code, NB_EIO);
        assert_non_null(strstr(nb_last_error()->message, "nb_idx_save: "));
        if (cases[c][0] == 2) assert_int_equal(renames, 0);
        fail_at(0, 0);
        assert_same_file(im, bi, ni);
        assert_same_file(lb, bl, nl);
        listing(dir, names, sizeof names);
        assert_string_equal(names, "images labels");
    }
    /* the labels' rename fails, and so does putting the old images back: the error says where
     * the old images are, and they are there, whole */
    fail_at(0, 2);
    fail_renames = 2;
    assert_int_equal(nb_idx_save(sub, im, lb), NB_EIO);
    fail_at(0, 0);
    const char *msg = nb_last_error()->message, *at = strstr(msg, "its old version is '");
    if (!at || !strstr(msg, "could not be put back")) fail_msg("%s", msg);
    char kept[400];
    snprintf(kept, sizeof kept, "%s", at + strlen("its old version is '"));
    kept[strcspn(kept, "'")] = '\0';
    assert_same_file(kept, bi, ni);
    assert_same_file(lb, bl, nl);
    assert_int_equal(rename(kept, im), 0); /* as the message says: the old pair again */
    listing(dir, names, sizeof names);
    assert_string_equal(names, "images labels");

    assert_int_equal(nb_idx_save(sub, im, lb), NB_OK);
    nb_dataset *back = nb_idx_load(im, lb);
    assert_non_null(back);
    assert_int_equal(nb_dataset_count(back), 3);
    assert_memory_equal(nb_dataset_labels(back), nb_dataset_labels(sub), 3);
    listing(dir, names, sizeof names);
    assert_string_equal(names, "images labels");
    /* no second name for the old images (link refused): when the labels' rename fails, the
     * error says that the images hold their new version */
    unsigned char *si = nbt_read_file(im, &ni), *sl = nbt_read_file(lb, &nl);
    fail_at(0, 2);
    fail_link = true;
    assert_int_equal(nb_idx_save(ds, im, lb), NB_EIO);
    fail_at(0, 0);
    char want[700];
    snprintf(want, sizeof want,
             "'%s' holds its new version: its old one could not be kept to put back", im);
    if (!strstr(nb_last_error()->message, want)) fail_msg("%s", nb_last_error()->message);
    assert_same_file(lb, sl, nl);
    size_t nn = 0;
    unsigned char *now = nbt_read_file(im, &nn);
    assert_true(now && (nn != ni || memcmp(now, si, ni))); /* the new images */
    free(now);
    free(si);
    free(sl);
    listing(dir, names, sizeof names);
    assert_string_equal(names, "images labels");
    /* a pair that did not exist: the labels' rename fails and the new images cannot be
     * removed; the error says so */
    char im2[600], lb2[600];
    snprintf(im2, sizeof im2, "%s/images2", dir);
    snprintf(lb2, sizeof lb2, "%s/labels2", dir);
    fail_at(0, 2);
    fail_unlink = true;
    assert_int_equal(nb_idx_save(ds, im2, lb2), NB_EIO);
    fail_at(0, 0);
    snprintf(want, sizeof want, "'%s' did not exist before and could not be removed", im2);
    if (!strstr(nb_last_error()->message, want)) fail_msg("%s", nb_last_error()->message);
    listing(dir, names, sizeof names);
    assert_string_equal(names, "images images2 labels");
    assert_int_equal(unlink(im2), 0);
    nb_dataset_free(back);
    free(bi);
    free(bl);
    nb_dataset_free(sub);
    nb_dataset_free(ds);
    nbt_rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_save_sync_and_rename_fail, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_idx_save_pair, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("file_faults", tests, NULL, NULL);
}
