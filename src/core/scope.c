/* Scopes: per-thread autorelease pools for the tensors created inside them. */
#include "core/internal.h"

#define SCOPE_INLINE 16

struct nb_scope {
    nb_scope *parent;
    nb_tensor **items; /* creation references; NULL where a tensor left early */
    size_t count, cap;
    nb_tensor *inline_items[SCOPE_INLINE]; /* a small step's tensors need no allocation */
};

static NB__TLS nb_scope *innermost;

nb_scope *nb_scope_begin(void)
{
    nb_scope *s = nb__calloc(sizeof *s);
    if (!s) {
        nb__oom("nb_scope_begin");
        return NULL;
    }
    s->items = s->inline_items;
    s->cap = SCOPE_INLINE;
    s->parent = innermost;
    innermost = s;
    return s;
}

static bool push(nb_scope *s, nb_tensor *t)
{
    if (s->count == s->cap && !nb__grow_inline((void **)&s->items, sizeof *s->items, &s->cap,
                                               s->count + 1, s->inline_items))
        return false;
    t->scope = s;
    t->scope_slot = s->count;
    s->items[s->count++] = t;
    return true;
}

bool nb__scope_track(nb_tensor *t)
{
    return innermost ? push(innermost, t) : true;
}

void nb__scope_untrack(nb_tensor *t)
{
    if (!t->scope) return;
    t->scope->items[t->scope_slot] = NULL;
    t->scope = NULL;
}

nb_status nb_scope_end(nb_scope *s)
{
    if (!s) return nb__error(NB_EINVAL, "nb_scope_end", "argument 's' is NULL");
    if (s != innermost) {
        return nb__error(NB_ESTATE, "nb_scope_end",
                         innermost ? "scope is not the innermost open scope"
                                   : "no scope is open on this thread");
    }
    innermost = s->parent;
    /* Release in reverse creation order: results before the temporaries they were made of. */
    for (size_t i = s->count; i-- > 0;) {
        nb_tensor *t = s->items[i];
        if (!t) continue;
        t->scope = NULL;
        nb__release(t);
    }
    if (s->items != s->inline_items) nb__free(s->items);
    nb__free(s);
    return NB_OK;
}

nb_tensor *nb_scope_keep(nb_tensor *t)
{
    if (!t) {
        nb__null("nb_scope_keep", "t");
        return NULL;
    }
    nb_scope *owner = t->scope;
    if (!owner) {
        nb__error(NB_ESTATE, "nb_scope_keep", "tensor is not owned by an open scope");
        return NULL;
    }
    nb_scope *open = innermost; /* scopes are per thread: the owner must be one of ours */
    while (open && open != owner) open = open->parent;
    if (!open) {
        nb__error(NB_ESTATE, "nb_scope_keep", "tensor is owned by a scope of another thread");
        return NULL;
    }
    nb__scope_untrack(t);
    if (owner->parent && !push(owner->parent, t)) {
        /* cannot move it: leave it where it was rather than leak or lose it */
        owner->items[t->scope_slot] = t;
        t->scope = owner;
        nb__oom("nb_scope_keep");
        return NULL;
    }
    return t;
}

nb_scope *nb__scope_suspend(void)
{
    nb_scope *s = innermost;
    innermost = NULL;
    return s;
}

void nb__scope_resume(nb_scope *token)
{
    innermost = token;
}
