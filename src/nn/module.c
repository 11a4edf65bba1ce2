/*
 * Modules: their lifetime, Sequential, forward, parameters, state dicts and repr. What a
 * layer computes and how it draws its parameters is in layers.c.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"

/* ---- text --------------------------------------------------------------------------------- */

void nb__text_printf(nb__text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    size_t need = t->len + (size_t)n + 1;
    if (!t->failed && need > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < need) cap *= 2;
        char *s = nb__alloc(cap, 1);
        if (!s) {
            t->failed = true;
        } else {
            if (t->s) memcpy(s, t->s, t->len + 1);
            nb__free(t->s);
            t->s = s;
            t->cap = cap;
        }
    }
    if (!t->failed) {
        if ((size_t)n < sizeof small) {
            memcpy(t->s + t->len, small, (size_t)n + 1);
        } else {
            va_start(ap, fmt);
            vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
            va_end(ap);
        }
    }
    t->len += (size_t)n;
}

void nb__text_float(nb__text *t, double x)
{
    if (!isfinite(x)) {
        nb__text_printf(t, "%s", isnan(x) ? "nan" : x < 0 ? "-inf" : "inf");
        return;
    }
    /* Python's repr: the fewest significant digits that read back, written positionally
       ("100.0", "1234.5", "0.0001") for decimal exponents in [-4, 16), else as "1e+16" */
    char buf[48];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, x);
        if (strtod(buf, NULL) == x) break;
    }
    snprintf(buf, sizeof buf, "%.*e", p - 1, x);
    int e = atoi(strchr(buf, 'e') + 1);
    if (e < -4 || e >= 16) {
        nb__text_printf(t, "%s", buf);
        return;
    }
    snprintf(buf, sizeof buf, "%.*f", p - 1 - e > 0 ? p - 1 - e : 0, x);
    nb__text_printf(t, strchr(buf, '.') ? "%s" : "%s.0", buf);
}

/* ---- lifetime --------------------------------------------------------------------------- */

nb_module *nb__module_new(const char *fn, const nb__module_kind *kind)
{
    nb_module *m = nb__calloc(sizeof *m);
    if (!m) {
        nb__oom(fn);
        return NULL;
    }
    m->kind = kind;
    m->training = true;
    m->height = 1;
    return m;
}

nb_status nb__module_param(const char *fn, nb_module *m, const char *name, nb_shape shape)
{
    nb_scope *token = nb__scope_suspend(); /* parameters belong to the module */
    nb_tensor *p = nb__new(fn, shape.ndim, shape.dims);
    nb__scope_resume(token);
    if (!p) return nb__last_code();
    nb__ag_make(p)->requires_grad = true;
    m->param_names[m->n_params] = name;
    m->params[m->n_params++] = p;
    return NB_OK;
}

static void module_destroy(nb_module *m)
{
    for (int i = 0; i < m->n_params; i++) nb__release(m->params[i]);
    for (int i = 0; i < m->n_children; i++) module_destroy(m->children[i]);
    nb__free(m->children);
    nb__free(m);
}

void nb_module_free(nb_module *m)
{
    if (m && !m->parent) module_destroy(m);
}

/* Whether m is among modules[0 .. n-1], or on a list linked by next_free. */
static bool listed_in(nb_module *const *modules, int n, const nb_module *m)
{
    for (int j = 0; j < n; j++)
        if (modules[j] == m) return true;
    return false;
}

static bool on_list(const nb_module *list, const nb_module *m)
{
    for (; list; list = list->next_free)
        if (list == m) return true;
    return false;
}

/*
 * Free the modules a failed container was given, modules[0 .. n-1] and the list more (linked
 * by next_free, each once): each one that is no other's child, once (the array may name one
 * twice, or name a child of another one in it). Which ones is decided before the first is
 * freed, as freeing one frees its children.
 */
static void free_given(nb_module *const *modules, int n, nb_module *more)
{
    nb_module *doomed = NULL;
    while (more) {
        nb_module *m = more;
        more = m->next_free;
        if (!m->parent && !listed_in(modules, n, m)) {
            m->next_free = doomed;
            doomed = m;
        }
    }
    for (int k = n - 1; k >= 0; k--) {
        nb_module *m = modules[k];
        if (m && !m->parent && !listed_in(modules, k, m)) {
            m->next_free = doomed;
            doomed = m;
        }
    }
    while (doomed) {
        nb_module *next = doomed->next_free;
        module_destroy(doomed);
        doomed = next;
    }
}

/*
 * Containers nest at most this deep, so that the walks over a model (free, forward,
 * parameters, repr), which recurse, stay well inside a thread's stack.
 */
#define MAX_NESTING 1024

/* Whether m as a child of a container at level (1 for a model's top) nests too deep. */
static bool too_deep(int level, const nb_module *m)
{
    return level + m->height > MAX_NESTING;
}

/* Levels from the top of m's model down to m, m included. */
static int level_of(const nb_module *m)
{
    int n = 0;
    for (; m; m = m->parent) n++;
    return n;
}

/* Whether m is c or holds c among its descendants. */
static bool holds(const nb_module *m, const nb_module *c)
{
    for (; c; c = c->parent)
        if (c == m) return true;
    return false;
}

/* ---- Sequential ------------------------------------------------------------------------- */

static nb_tensor *sequential_forward(nb_module *m, nb_tensor *x)
{
    /* PyTorch returns x itself; a scope cannot own one tensor twice: an alias of x, as
       nb_dropout's identity (AliasBackward0) */
    if (m->n_children == 0) {
        nb_tensor *y = nb_dropout(x, 0.0, false); /* fails only for want of memory */
        if (!y) nb__oom("nb_module_forward");
        return y;
    }
    nb_tensor *y = x;
    for (int i = 0; i < m->n_children && y; i++) {
        nb_tensor *next = nb_module_forward(m->children[i], y);
        if (y != x) nb__drop(y); /* the graph holds what backward needs of it */
        y = next;
    }
    return y;
}

static const nb__module_kind sequential_kind = {"Sequential", sequential_forward, NULL, NULL};

static bool is_sequential(const nb_module *m)
{
    return m->kind == &sequential_kind;
}

/* Room in seq for n children in all. */
static nb_status reserve(const char *fn, nb_module *seq, int n)
{
    if (n <= seq->cap_children) return NB_OK;
    int cap = seq->cap_children ? seq->cap_children : 8;
    while (cap < n) cap = cap > INT_MAX / 2 ? n : 2 * cap;
    nb_module **c = nb__alloc((size_t)cap * sizeof *c, 16);
    if (!c) return nb__oom(fn);
    if (seq->n_children) memcpy(c, seq->children, (size_t)seq->n_children * sizeof *c);
    nb__free(seq->children);
    seq->children = c;
    seq->cap_children = cap;
    return NB_OK;
}

/* Make m child i of seq (i <= n_children, with room for it); the heights above follow. */
static void take(nb_module *seq, int i, nb_module *m)
{
    m->parent = seq; /* m keeps its own mode, as in PyTorch, until seq's is set */
    seq->children[i] = m;
    if (i == seq->n_children) { /* added: the heights above can only grow */
        seq->n_children++;
        int h = m->height + 1;
        for (nb_module *p = seq; p && p->height < h; p = p->parent, h++) p->height = h;
        return;
    }
    for (nb_module *p = seq; p; p = p->parent) { /* replaced: the heights may also shrink */
        int h = 0;
        for (int k = 0; k < p->n_children; k++)
            if (p->children[k]->height > h) h = p->children[k]->height;
        if (p->height == h + 1) break;
        p->height = h + 1;
    }
}

/* nb_module_sequential; on failure the modules are freed (free_given) only where free_them */
static nb_module *sequential_new(nb_module *const *modules, int n, bool free_them)
{
    static const char fn[] = "nb_module_sequential";
    nb_status rc = NB_OK;
    if (n < 0 || (n > 0 && !modules)) {
        rc = nb__error(NB_EINVAL, fn, "%d modules%s", n, n > 0 ? " from a NULL array" : "");
        n = 0;
    }
    for (int i = 0; i < n && rc == NB_OK; i++) {
        if (!modules[i])
            rc = nb__null(fn, "modules");
        else if (modules[i]->parent)
            rc = nb__error(NB_EINVAL, fn, "module %d already belongs to a container", i);
        for (int j = 0; j < i && rc == NB_OK; j++)
            if (modules[j] == modules[i])
                rc = nb__error(NB_EINVAL, fn, "module %d is also module %d", i, j);
        if (rc == NB_OK && too_deep(1, modules[i]))
            rc = nb__error(NB_ERANGE, fn, "module %d would nest containers deeper than %d levels",
                           i, MAX_NESTING);
    }
    nb_module *seq = rc == NB_OK ? nb__module_new(fn, &sequential_kind) : NULL;
    if (seq && reserve(fn, seq, n) != NB_OK) {
        module_destroy(seq);
        seq = NULL;
    }
    if (!seq) {
        if (free_them) free_given(modules, n, NULL);
        return NULL;
    }
    for (int i = 0; i < n; i++) take(seq, i, modules[i]);
    return seq;
}

nb_module *nb_module_sequential(nb_module *const *modules, int n)
{
    return sequential_new(modules, n, true);
}

/* The checks nb_module_append and nb_module_set_child share. */
static nb_status check_child(const char *fn, const nb_module *seq, const nb_module *m)
{
    nb_status rc =
        !seq                  ? nb__error(NB_EINVAL, fn, "argument 'seq' is NULL")
        : !m                  ? nb__null(fn, "m")
        : !is_sequential(seq) ? nb__error(NB_EINVAL, fn, "%s is not a Sequential", seq->kind->name)
        : m->parent ? nb__error(NB_EINVAL, fn, "the module already belongs to a container")
        : holds(m, seq)
            ? nb__error(NB_EINVAL, fn, "the module %s the Sequential", m == seq ? "is" : "holds")
        : too_deep(level_of(seq), m)
            ? nb__error(NB_ERANGE, fn, "the module would nest containers deeper than %d levels",
                        MAX_NESTING)
            : NB_OK;
    return rc;
}

/* A child that was refused is freed, unless it belongs to a container or holds seq. */
static nb_status refuse(nb_status rc, const nb_module *seq, nb_module *m)
{
    if (m && !m->parent && !holds(m, seq)) module_destroy(m);
    return rc;
}

nb_status nb_module_append(nb_module *seq, nb_module *m)
{
    static const char fn[] = "nb_module_append";
    nb_status rc = check_child(fn, seq, m);
    if (rc == NB_OK && seq->n_children == INT_MAX)
        rc = nb__error(NB_ERANGE, fn, "the Sequential already has %d modules", INT_MAX);
    if (rc == NB_OK) rc = reserve(fn, seq, seq->n_children + 1);
    if (rc != NB_OK) return refuse(rc, seq, m);
    take(seq, seq->n_children, m);
    return NB_OK;
}

nb_status nb_module_set_child(nb_module *seq, int i, nb_module *m)
{
    static const char fn[] = "nb_module_set_child";
    nb_status rc = check_child(fn, seq, m);
    int k = rc == NB_OK && i < 0 ? i + seq->n_children : i;
    if (rc == NB_OK && (k < 0 || k >= seq->n_children))
        rc =
            nb__error(NB_EINVAL, fn, "index %d is out of range for %d modules", i, seq->n_children);
    if (rc != NB_OK) return refuse(rc, seq, m);
    module_destroy(seq->children[k]);
    take(seq, k, m);
    return NB_OK;
}

int nb_module_num_children(const nb_module *m)
{
    return m ? m->n_children : 0;
}

nb_module *nb_module_child(const nb_module *m, int i)
{
    if (!m) return NULL;
    int k = i < 0 ? i + m->n_children : i;
    return k >= 0 && k < m->n_children ? m->children[k] : NULL;
}

/* ---- NB_SEQUENTIAL's per-thread builder --------------------------------------------------- */

#define BUILD_DEPTH 16

typedef struct build_frame {
    nb_module **items;
    int n, cap;
    nb_status failure;  /* the first error; the items are freed at the end */
    nb_module *no_room; /* the modules items had no room for (after a failure), by next_free */
} build_frame;

/* BUILD_DEPTH frames, allocated when the outermost frame opens and freed when it ends (kept
   out of TLS: core/internal.h) */
static _Thread_local build_frame *frames;
/* lost: frames that could not open, beyond BUILD_DEPTH, or all of them from the outermost
   one when its frames could not be allocated (depth is 0 then) */
static _Thread_local int depth, lost;
/* the modules of the frames that failed (or were lost) inside an enclosing one, by next_free,
   each once: freed when the outermost frame ends */
static _Thread_local nb_module *deferred;

/*
 * Modules are freed once, never as they arrive: a module given twice (refused) would
 * otherwise be freed and then stored or freed again. A frame that fails inside another one
 * hands its modules to the outermost frame's end rather than freeing them, as one of them
 * may still come to an enclosing frame (NB_SEQUENTIAL(NB_SEQUENTIAL(a, NULL), a)).
 */
void nb_sequential_build_begin(void)
{
    if (lost > 0 || depth == BUILD_DEPTH) {
        lost++;
        return;
    }
    if (depth == 0 && !(frames = nb__alloc(BUILD_DEPTH * sizeof *frames, 16))) {
        lost++;
        return;
    }
    frames[depth++] = (build_frame){NULL, 0, 0, NB_OK, NULL};
}

/* Whether one of the open frames 0 .. n-1 holds m (and frees it, or gives it away). */
static bool held_below(int n, const nb_module *m)
{
    for (int d = 0; d < n; d++)
        if (listed_in(frames[d].items, frames[d].n, m) || on_list(frames[d].no_room, m))
            return true;
    return false;
}

/* Put m on the deferred list, unless it is there already. */
static void defer(nb_module *m)
{
    if (m && !on_list(deferred, m)) {
        m->next_free = deferred;
        deferred = m;
    }
}

void nb_sequential_build_add(nb_module *m)
{
    static const char fn[] = "nb_module_sequential";
    if (lost > 0 || depth == 0) { /* nowhere to put it: NB_SEQUENTIAL nested too deep */
        if (m && !held_below(depth, m)) defer(m);
        if (depth == 0 && lost == 0) { /* not inside NB_SEQUENTIAL at all */
            free_given(NULL, 0, deferred);
            deferred = NULL;
        }
        return;
    }
    build_frame *f = &frames[depth - 1];
    if (f->failure == NB_OK && !m) f->failure = nb__null(fn, "modules");
    if (!m) return;
    bool mine = listed_in(f->items, f->n, m) || on_list(f->no_room, m) || on_list(deferred, m);
    if (!mine && held_below(depth - 1, m)) { /* an enclosing NB_SEQUENTIAL has it: it stays there */
        if (f->failure == NB_OK)
            f->failure =
                nb__error(NB_EINVAL, fn, "a module is also given to an enclosing NB_SEQUENTIAL");
        return;
    }
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 8;
        nb_module **items = nb__alloc((size_t)cap * sizeof *items, 16);
        if (items) {
            if (f->n) memcpy(items, f->items, (size_t)f->n * sizeof *items);
            nb__free(f->items);
            f->items = items;
            f->cap = cap;
        } else if (f->failure == NB_OK) {
            f->failure = nb__oom(fn);
        }
    }
    if (f->n < f->cap) { /* kept also after a failure, so that the end frees each one once */
        f->items[f->n++] = m;
    } else if (!mine) {
        m->next_free = f->no_room;
        f->no_room = m;
    }
}

nb_module *nb_sequential_build_end(void)
{
    static const char fn[] = "nb_module_sequential";
    if (lost > 0) { /* its modules are deferred: the frames below, if any, are open */
        lost--;
        if (depth > 0) {
            nb__error(NB_EINVAL, fn, "NB_SEQUENTIAL nested deeper than %d levels", BUILD_DEPTH);
        } else {
            nb__oom(fn);
            if (lost == 0) { /* the outermost one */
                free_given(NULL, 0, deferred);
                deferred = NULL;
            }
        }
        return NULL;
    }
    if (depth == 0) return NULL;
    build_frame f = frames[--depth];
    nb_module *seq = f.failure == NB_OK ? sequential_new(f.items, f.n, false) : NULL;
    if (!seq) { /* the modules wait for the outermost frame's end */
        for (nb_module *m = f.no_room, *next; m; m = next) {
            next = m->next_free;
            defer(m);
        }
        for (int i = 0; i < f.n; i++) defer(f.items[i]);
    }
    if (depth == 0) { /* each deferred module once, unless a container took it since */
        free_given(NULL, 0, deferred);
        deferred = NULL;
        nb__free(frames);
        frames = NULL;
    }
    nb__free(f.items);
    return seq;
}

/* ---- using a module --------------------------------------------------------------------- */

nb_tensor *nb_module_forward(nb_module *m, nb_tensor *x)
{
    static const char fn[] = "nb_module_forward";
    if (!m) {
        nb__error(NB_EINVAL, fn, "argument 'm' is NULL");
        return NULL;
    }
    if (!x) {
        nb__null(fn, "x");
        return NULL;
    }
    return m->kind->forward(m, x);
}

static void set_training(nb_module *m, bool training)
{
    m->training = training;
    for (int i = 0; i < m->n_children; i++) set_training(m->children[i], training);
}

nb_status nb_module_train(nb_module *m, bool training)
{
    if (!m) return nb__error(NB_EINVAL, "nb_module_train", "argument 'm' is NULL");
    set_training(m, training);
    return NB_OK;
}

bool nb_module_is_training(const nb_module *m)
{
    return m && m->training;
}

const char *nb_module_name(const nb_module *m)
{
    return m ? m->kind->name : NULL;
}

/* ---- parameters ------------------------------------------------------------------------- */

/* Visit m's parameters in PyTorch's order: its own, then each child's. */
typedef void (*param_visit)(nb_tensor *p, void *ctx);

static void each_param(const nb_module *m, param_visit f, void *ctx)
{
    for (int i = 0; i < m->n_params; i++) f(m->params[i], ctx);
    for (int i = 0; i < m->n_children; i++) each_param(m->children[i], f, ctx);
}

typedef struct collect {
    nb_tensor **out;
    int n, cap;
    int64_t numel;
} collect;

static void collect_param(nb_tensor *p, void *ctx)
{
    collect *c = ctx;
    if (c->out && c->n < c->cap) c->out[c->n] = p;
    c->n++;
    c->numel += p->numel;
}

int nb_module_parameters(const nb_module *m, nb_tensor **out, int cap)
{
    static const char fn[] = "nb_module_parameters";
    if (!m) return nb__error(NB_EINVAL, fn, "argument 'm' is NULL");
    collect c = {NULL, 0, 0, 0};
    each_param(m, collect_param, &c);
    if (!out && cap == 0) return c.n;
    if (!out || cap < c.n)
        return nb__error(NB_EINVAL, fn, "%d parameters do not fit in an array of %d", c.n,
                         out ? cap : 0);
    c = (collect){out, 0, cap, 0};
    each_param(m, collect_param, &c);
    return c.n;
}

int64_t nb_module_parameter_count(const nb_module *m)
{
    if (!m) return -1;
    collect c = {NULL, 0, 0, 0};
    each_param(m, collect_param, &c);
    return c.numel;
}

static void set_requires_grad(nb_tensor *p, void *ctx)
{
    nb__ag_make(p)->requires_grad = *(const bool *)ctx;
}

nb_status nb_module_requires_grad_(nb_module *m, bool requires_grad)
{
    if (!m) return nb__error(NB_EINVAL, "nb_module_requires_grad_", "argument 'm' is NULL");
    each_param(m, set_requires_grad, &requires_grad);
    return NB_OK;
}

static nb_status reset(nb_module *m, nb_generator *gen)
{
    nb_status rc = m->kind->reset ? m->kind->reset(m, gen) : NB_OK;
    for (int i = 0; i < m->n_children && rc == NB_OK; i++) rc = reset(m->children[i], gen);
    return rc;
}

nb_status nb_module_reset_parameters(nb_module *m, nb_generator *gen)
{
    static const char fn[] = "nb_module_reset_parameters";
    if (!m) return nb__error(NB_EINVAL, fn, "argument 'm' is NULL");
    if (!gen && nb__pending()) return nb__pending();
    return reset(m, gen);
}

/* ---- state dicts -------------------------------------------------------------------------- */

/* Call f(name, parameter) for each parameter of m, names prefixed as PyTorch's. */
typedef nb_status (*named_visit)(const char *name, nb_tensor *p, void *ctx);

static nb_status each_named(const nb_module *m, nb__text *prefix, named_visit f, void *ctx)
{
    size_t at = prefix->len;
    nb_status rc = NB_OK;
    for (int i = 0; i < m->n_params && rc == NB_OK; i++) {
        nb__text_printf(prefix, "%s", m->param_names[i]);
        rc = prefix->failed ? NB_ENOMEM : f(prefix->s, m->params[i], ctx);
        prefix->len = at;
        if (prefix->s) prefix->s[at] = '\0';
    }
    for (int i = 0; i < m->n_children && rc == NB_OK; i++) {
        nb__text_printf(prefix, "%d.", i);
        rc = prefix->failed ? NB_ENOMEM : each_named(m->children[i], prefix, f, ctx);
        prefix->len = at;
        if (prefix->s) prefix->s[at] = '\0';
    }
    return rc;
}

static nb_status add_entry(const char *name, nb_tensor *p, void *ctx)
{
    return nb_state_dict_set(ctx, name, p);
}

nb_status nb_module_state_dict(const nb_module *m, nb_state_dict *out)
{
    static const char fn[] = "nb_module_state_dict";
    if (!m || !out) return nb__error(NB_EINVAL, fn, "argument '%s' is NULL", m ? "out" : "m");
    nb__text prefix = {0};
    nb__text_printf(&prefix, "%s", "");
    nb_status rc = each_named(m, &prefix, add_entry, out);
    nb__free(prefix.s);
    return rc == NB_ENOMEM ? nb__oom(fn) : rc;
}

typedef struct load_check {
    const nb_state_dict *in;
    bool strict;
    int found;        /* parameters that have an entry */
    nb__text missing; /* their names, quoted */
    bool copy;        /* second pass: copy the values */
} load_check;

static nb_status check_entry(const char *name, nb_tensor *p, void *ctx)
{
    static const char fn[] = "nb_module_load_state_dict";
    load_check *c = ctx;
    nb_tensor *t = nb_state_dict_get(c->in, name);
    if (!t) {
        if (c->strict) nb__text_printf(&c->missing, "%s\"%s\"", c->missing.len ? ", " : "", name);
        return NB_OK;
    }
    c->found++;
    if (!nb__same_shape(t, p)) {
        char a[NB__SHAPE_STR], b[NB__SHAPE_STR];
        return nb__error(NB_ESHAPE, fn,
                         "size mismatch for %s: copying a param with shape %s from checkpoint, "
                         "the shape in current model is %s",
                         name, nb__shape_str(a, t->ndim, t->shape),
                         nb__shape_str(b, p->ndim, p->shape));
    }
    if (c->copy && p->numel) {
        memcpy(nb__data(p), nb__data(t), (size_t)p->numel * sizeof(float));
        p->storage->version++;
    }
    return NB_OK;
}

/* Whether name is a parameter of m (a Sequential's names start with the child's index). */
static bool has_param(const nb_module *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->param_names[i], name)) return true;
    if (!(name[0] >= '0' && name[0] <= '9')) return false; /* strtol would skip " ", take "+" */
    char *end;
    long k = strtol(name, &end, 10);
    if (*end != '.' || k >= m->n_children || (name[0] == '0' && end - name > 1)) return false;
    return has_param(m->children[k], end + 1);
}

nb_status nb_module_load_state_dict(nb_module *m, const nb_state_dict *in, bool strict)
{
    static const char fn[] = "nb_module_load_state_dict";
    if (!m || !in) return nb__error(NB_EINVAL, fn, "argument '%s' is NULL", m ? "in" : "m");
    load_check c = {in, strict, 0, {0}, false};
    nb__text prefix = {0};
    nb__text_printf(&prefix, "%s", "");
    nb_status rc = each_named(m, &prefix, check_entry, &c);
    /* each_named's NB_ENOMEM (a name that could not be formed) is not recorded yet */
    if (rc == NB_ENOMEM || (rc == NB_OK && (prefix.failed || c.missing.failed))) rc = nb__oom(fn);
    if (rc == NB_OK && c.missing.len)
        rc = nb__error(NB_ESTATE, fn, "Missing key(s) in state_dict: %s.", c.missing.s);
    for (int64_t i = 0; rc == NB_OK && strict && i < nb_state_dict_size(in); i++) {
        const char *name = nb_state_dict_name(in, i);
        if (!has_param(m, name))
            rc = nb__error(NB_ESTATE, fn, "Unexpected key(s) in state_dict: \"%s\".", name);
    }
    if (rc == NB_OK) { /* everything checked: copy */
        c.copy = true;
        prefix.len = 0;
        prefix.s[0] = '\0';
        rc = each_named(m, &prefix, check_entry, &c);
    }
    nb__free(prefix.s);
    nb__free(c.missing.s);
    return rc;
}

/* ---- printing --------------------------------------------------------------------------- */

static void repr(const nb_module *m, nb__text *t, int indent)
{
    nb__text_printf(t, "%s(", m->kind->name);
    if (m->kind->extra_repr) m->kind->extra_repr(m, t);
    if (m->n_children) {
        nb__text_printf(t, "\n");
        for (int i = 0; i < m->n_children; i++) {
            nb__text_printf(t, "%*s(%d): ", indent + 2, "", i);
            repr(m->children[i], t, indent + 2);
            nb__text_printf(t, "\n");
        }
        nb__text_printf(t, "%*s", indent, "");
    }
    nb__text_printf(t, ")");
}

int64_t nb_module_format(const nb_module *m, char *buf, size_t size)
{
    static const char fn[] = "nb_module_format";
    if (!m) return nb__error(NB_EINVAL, fn, "argument 'm' is NULL");
    if (!buf && size > 0) return nb__error(NB_EINVAL, fn, "buf is NULL but size is %zu", size);
    nb__text t = {0};
    repr(m, &t, 0);
    if (t.failed) {
        nb__free(t.s);
        return nb__oom(fn);
    }
    if (size > 0) {
        size_t n = t.len < size - 1 ? t.len : size - 1;
        memcpy(buf, t.s, n);
        buf[n] = '\0';
    }
    nb__free(t.s);
    return (int64_t)t.len;
}

nb_status nb_module_print(const nb_module *m, FILE *f)
{
    static const char fn[] = "nb_module_print";
    if (!m) return nb__error(NB_EINVAL, fn, "argument 'm' is NULL");
    if (!f) return nb__error(NB_EINVAL, fn, "argument 'f' is NULL");
    nb__text t = {0};
    repr(m, &t, 0);
    nb_status rc = NB_OK;
    if (t.failed)
        rc = nb__oom(fn);
    else if (fprintf(f, "%s\n", t.s) < 0)
        rc = nb__error(NB_EIO, fn, "write failed");
    nb__free(t.s);
    return rc;
}
