/*
 * Writing a file in place of another: what is written goes to a temporary file next to the
 * target, which is synced and then renamed over it. Rename within one directory is atomic,
 * so a reader sees the old file or the new one, never a part, and a save that fails leaves
 * the old file as it was (and removes only its own temporary file). A target that exists and
 * is not a regular file (a directory, a device, a pipe) is refused rather than replaced.
 */
#define _XOPEN_SOURCE 700 /* realpath, strerror_r */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"

_Static_assert(PATH_MAX <= NB__PATH_MAX, "realpath needs PATH_MAX bytes");

const char *nb__errno_str(int err, char *buf, size_t n)
{
    /* the XSI strerror_r (no _GNU_SOURCE here): thread-safe, writes into buf */
    if (strerror_r(err, buf, n) != 0) snprintf(buf, n, "error %d", err);
    return buf;
}

/*
 * A new name target.<pid>.<n>.tmp in target's directory, into tmp, made by make(name, ctx),
 * which creates it or fails with errno EEXIST when it is taken. Where that name is longer
 * than the file system allows (a target's name of 240 bytes or so), the name is
 * .nabla.<pid>.<n>.tmp in the same directory instead. Returns what make returned.
 */
static int unique_name(const char *target, char *tmp, size_t size,
                       int (*make)(const char *name, void *ctx), void *ctx)
{
    static atomic_uint counter;
    const char *slash = strrchr(target, '/');
    const int dir = slash ? (int)(slash - target) + 1 : 0; /* the directory's part, with '/' */
    bool short_name = false;
    int rc = -1;
    for (int tries = 0; rc < 0 && tries < 100; tries++) {
        unsigned n = atomic_fetch_add(&counter, 1);
        if (short_name)
            snprintf(tmp, size, "%.*s.nabla.%ld.%u.tmp", dir, target, (long)getpid(), n);
        else
            snprintf(tmp, size, "%s.%ld.%u.tmp", target, (long)getpid(), n);
        rc = make(tmp, ctx);
        if (rc < 0 && errno == ENAMETOOLONG && !short_name)
            short_name = true;
        else if (rc < 0 && errno != EEXIST)
            break;
    }
    return rc;
}

static int make_file(const char *name, void *ctx)
{
    (void)ctx;
    return open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
}

static int make_link(const char *name, void *ctx)
{
    return link(ctx, name);
}

/* dst = src (n bytes of room); 0 or ENAMETOOLONG. */
static int copy_path(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);
    if (len >= n) return ENAMETOOLONG;
    memcpy(dst, src, len + 1);
    return 0;
}

/*
 * The file a save to path replaces, into out: path itself, or what a symbolic link at path
 * leads to, also when that does not exist yet (the save then creates it, as open does).
 * Returns 0 or an errno value (ELOOP for links that lead in a circle, ENOENT for "").
 */
static int resolve(const char *path, char out[NB__PATH_MAX])
{
    struct stat st;
    if (!path[0]) return ENOENT; /* as open(""): not a file in the current directory */
    if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode)) return copy_path(out, path, NB__PATH_MAX);
    if (realpath(path, out)) return 0;
    char link[NB__PATH_MAX];
    int err = copy_path(out, path, NB__PATH_MAX);
    for (int hops = 0; !err && hops < 40; hops++) { /* a link to a missing file: by hand */
        ssize_t n = readlink(out, link, sizeof link);
        if (n < 0 || (size_t)n >= sizeof link) return n < 0 ? errno : ENAMETOOLONG;
        link[n] = '\0';
        char *slash = strrchr(out, '/');
        if (link[0] == '/' || !slash) {
            err = copy_path(out, link, NB__PATH_MAX);
        } else { /* relative to the link's directory */
            size_t dir = (size_t)(slash - out) + 1;
            err = copy_path(out + dir, link, NB__PATH_MAX - dir);
        }
        if (!err && (lstat(out, &st) != 0 || !S_ISLNK(st.st_mode))) return 0;
    }
    return err ? err : ELOOP;
}

/* The directory part of a resolved target, into dir: "." for a bare name. */
static void dir_of(const char *target, char dir[NB__PATH_MAX])
{
    strcpy(dir, target);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else
        slash[slash == dir] = '\0'; /* "/name" is in the root directory */
}

bool nb__same_file(const char *a, const char *b)
{
    char ta[NB__PATH_MAX], tb[NB__PATH_MAX];
    if (resolve(a, ta) != 0 || resolve(b, tb) != 0) return false; /* the open reports it */
    struct stat sa, sb;
    int ea = stat(ta, &sa), eb = stat(tb, &sb);
    if (ea == 0 && eb == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ea == 0 || eb == 0) return false;
    /* neither is there yet: the same name in the same directory */
    const char *na = strrchr(ta, '/'), *nb = strrchr(tb, '/');
    if (strcmp(na ? na + 1 : ta, nb ? nb + 1 : tb) != 0) return false;
    char da[NB__PATH_MAX], db[NB__PATH_MAX];
    dir_of(ta, da);
    dir_of(tb, db);
    return stat(da, &sa) == 0 && stat(db, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

nb_status nb__file_out_open(nb__file_out *f, const char *fn, const char *path)
{
    char why[128];
    struct stat st;
    *f = (nb__file_out){.fd = -1, .path = path};
    int err = resolve(path, f->target);
    if (err)
        return nb__error(NB_EIO, fn, "cannot resolve '%s': %s", path,
                         nb__errno_str(err, why, sizeof why));
    if (stat(f->target, &st) == 0 && !S_ISREG(st.st_mode))
        return nb__error(NB_EIO, fn, "'%s' exists and is not a regular file", path);
    size_t size = strlen(f->target) + 48;
    if (!(f->tmp = nb__alloc(size, 1))) return nb__oom(fn);
    if ((f->fd = unique_name(f->target, f->tmp, size, make_file, NULL)) < 0) {
        nb_status rc = nb__error(NB_EIO, fn, "cannot create a temporary file next to '%s': %s",
                                 path, nb__errno_str(errno, why, sizeof why));
        nb__file_out_abort(f);
        return rc;
    }
    return NB_OK;
}

int nb__file_out_write(void *ctx, const void *data, size_t size)
{
    nb__file_out *f = ctx;
    const unsigned char *p = data;
    while (size > 0) {
        size_t want = size < ((size_t)1 << 30) ? size : (size_t)1 << 30;
        ssize_t n = write(f->fd, p, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno ? errno : EIO;
        p += n;
        size -= (size_t)n;
        f->written += (uint64_t)n;
    }
    return 0;
}

/*
 * Make the rename itself durable. Best effort: by now the new file is in place, and a file
 * system that cannot sync a directory (EINVAL) has nothing to report that the caller could
 * act on.
 */
static void sync_dir(const char *target)
{
    char dir[NB__PATH_MAX];
    dir_of(target, dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* fsync and close f's temporary file; on failure, f is aborted. */
static nb_status file_out_sync(nb__file_out *f, const char *fn)
{
    char why[128];
    nb_status rc = NB_OK;
    if (fsync(f->fd) != 0) {
        rc = nb__error(NB_EIO, fn, "cannot sync '%s' to disk: %s", f->path,
                       nb__errno_str(errno, why, sizeof why));
    } else {
        int closed = close(f->fd);
        f->fd = -1;
        if (closed != 0)
            rc = nb__error(NB_EIO, fn, "closing the temporary file for '%s' failed: %s", f->path,
                           nb__errno_str(errno, why, sizeof why));
    }
    if (rc != NB_OK) nb__file_out_abort(f);
    return rc;
}

/*
 * What a file's old version became while a group is put in place (nb__file_out.old): not
 * known (it could not be linked: it cannot be put back), kept under a second name (a hard
 * link) so that it can be renamed back, absent (the group makes the file), put back, or left
 * under its second name because putting it back failed.
 */
enum { OLD_UNKNOWN, OLD_KEPT, OLD_NONE, OLD_PUT_BACK, OLD_STRANDED };

/* Put f, renamed by its group, back as it was; false when that cannot be done. */
static bool restore(nb__file_out *f)
{
    if (f->old == OLD_KEPT) {
        f->old = rename(f->kept, f->target) == 0 ? OLD_PUT_BACK : OLD_STRANDED;
        return f->old == OLD_PUT_BACK;
    }
    return f->old == OLD_NONE && unlink(f->target) == 0;
}

nb_status nb__file_out_commit_all(nb__file_out *const *f, int n, const char *fn)
{
    char why[128];
    nb_status rc = NB_OK;
    int renamed = 0, err = 0;
    for (int i = 0; i < n && rc == NB_OK; i++) rc = file_out_sync(f[i], fn);
    for (int i = 0; i < n; i++) { /* one file alone needs nothing to go back to */
        f[i]->old = OLD_UNKNOWN;
        if (n == 1 || rc != NB_OK) continue;
        if (unique_name(f[i]->target, f[i]->kept, sizeof f[i]->kept, make_link, f[i]->target) == 0)
            f[i]->old = OLD_KEPT;
        else if (errno == ENOENT)
            f[i]->old = OLD_NONE;
    }
    while (rc == NB_OK && renamed < n) {
        if (rename(f[renamed]->tmp, f[renamed]->target) == 0) {
            renamed++;
        } else {
            err = errno;
            rc = NB_EIO;
        }
    }
    if (err) { /* the files renamed before the one that failed go back */
        const nb__file_out *lost = NULL;
        for (int i = renamed; i-- > 0;)
            if (!restore(f[i])) lost = f[i];
        nb__errno_str(err, why, sizeof why);
        if (!lost)
            nb__error(NB_EIO, fn, "renaming the temporary file over '%s' failed: %s",
                      f[renamed]->path, why);
        else if (lost->old == OLD_STRANDED)
            nb__error(NB_EIO, fn,
                      "renaming the temporary file over '%s' failed: %s; '%s' could not be put "
                      "back: its old version is '%s'",
                      f[renamed]->path, why, lost->path, lost->kept);
        else if (lost->old == OLD_NONE)
            nb__error(NB_EIO, fn,
                      "renaming the temporary file over '%s' failed: %s; '%s' did not exist "
                      "before and could not be removed",
                      f[renamed]->path, why, lost->path);
        else
            nb__error(NB_EIO, fn,
                      "renaming the temporary file over '%s' failed: %s; '%s' holds its new "
                      "version: its old one could not be kept to put back",
                      f[renamed]->path, why, lost->path);
    }
    for (int i = 0; i < n; i++)
        if (f[i]->old == OLD_KEPT) (void)unlink(f[i]->kept);
    for (int i = 0; i < n; i++) {
        if (rc != NB_OK) {
            nb__file_out_abort(f[i]);
            continue;
        }
        sync_dir(f[i]->target);
        nb__free(f[i]->tmp);
        f[i]->tmp = NULL;
    }
    return rc;
}

nb_status nb__file_out_commit(nb__file_out *f, const char *fn)
{
    return nb__file_out_commit_all(&f, 1, fn);
}

void nb__file_out_abort(nb__file_out *f)
{
    if (f->fd >= 0) close(f->fd);
    if (f->tmp) unlink(f->tmp); /* the temporary file is ours: remove it */
    nb__free(f->tmp);
    f->fd = -1;
    f->tmp = NULL;
}
