/*
 * Internal definitions shared by the io layer's source files: jansson's allocations routed
 * through nabla's allocator. Never installed.
 */
#ifndef NABLA_IO_INTERNAL_H
#define NABLA_IO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/internal.h"
#include "nabla/io.h"

/**
 * From now until nb__json_end(), jansson's allocations made by the calling thread go through
 * nb__alloc/nb__free, so allocation-failure tests reach them and leak counts include them.
 * Every jansson value made in between must be freed before nb__json_end(). Other threads, and
 * this one outside the bracket, keep jansson's previous allocator.
 */
void nb__json_begin(void);
void nb__json_end(void);
/** Whether an allocation failed inside the current bracket (jansson reports no cause). */
bool nb__json_failed(void);

#endif /* NABLA_IO_INTERNAL_H */
