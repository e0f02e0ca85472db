/* formats/graph_internal.h: what graph.c, graph_edit.c and the ONNX codec share about a graph's
 * and a model's private parts. Not installed. */
#ifndef JOULE_GRAPH_INTERNAL_H
#define JOULE_GRAPH_INTERNAL_H

#include <stddef.h>

#include "joule/graph.h"

typedef struct arena_block arena_block;

struct joule_graph_priv {
    arena_block *arena;
    joule_value **slots; /* open-addressing hash of values by name */
    size_t n_slots;
    size_t cap_nodes, cap_values, cap_inputs, cap_outputs, cap_inits, cap_vinfo;
    const void *origin; /* GraphProto it was loaded from */
};

/* A mapped region (the model file or an external data file) the model keeps alive. */
typedef struct joule_mapping {
    char *path; /* resolved path, so each external file is mapped once */
    void *addr;
    size_t len;
    struct joule_mapping *next;
} joule_mapping;

typedef struct joule_model_priv {
    void *proto;         /* Onnx__ModelProto, freed with protobuf_c_message_free_unpacked */
    joule_mapping *maps; /* munmap'd on free */
} joule_model_priv;

/* Allocates zeroed memory that lives as long as the graph. */
void *joule_graph_alloc(joule_graph *g, size_t size);
/* Copies len bytes (plus a NUL) into the arena. */
const char *joule_graph_intern_n(joule_graph *g, const char *s, size_t len);
joule_status joule_graph_create(joule_graph **out, joule_error *err);
void joule_graph_destroy(joule_graph *g);
/* Appends to one of the declared lists (which: 'i' inputs, 'o' outputs, 'n' initializers,
 * 'v' value_info). */
joule_status joule_graph_list_add(joule_graph *g, char which, joule_value *v, joule_error *err);
/* Appends node at the end of the order. */
joule_status joule_graph_append_node(joule_graph *g, joule_node *node, joule_error *err);
void joule_node_destroy(joule_node *n);
/* Grows *arr (of element size elem) to hold at least need elements. */
int joule_grow(void *arr, size_t *cap, size_t need, size_t elem);

#endif
