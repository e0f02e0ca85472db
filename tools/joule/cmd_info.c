/* tools/joule/cmd_info.c: `joule info MODEL [--json] [--input-shape NAME=DIMS]...` prints what a
 * model holds: versions, producer, inputs/outputs, nodes by op, parameters by dtype, a per-layer
 * table with sparsity and MACs, and totals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char usage[] =
    "usage: joule info MODEL [--json] [--input-shape NAME=1x3x224x224]...\n"
    "Prints versions, inputs and outputs, nodes by op, parameters by dtype, a per-layer table\n"
    "(weight shape, parameters, sparsity, dtype, MACs) and totals. Symbolic dims that no\n"
    "--input-shape fixes are taken as 1 when counting MACs.\n";

static void print_values(const char *title, const joule_info_io *io, size_t n)
{
    printf("%s:\n", title);
    for (size_t i = 0; i < n; i++) {
        char shape[256];
        joule_shape_format(&io[i].shape, shape, sizeof shape);
        printf("  %-24s %-8s %s\n", io[i].name, joule_dtype_name(io[i].dtype), shape);
    }
}

static void print_text(const joule_model *m, const joule_info *info)
{
    printf("model:     %s\n", m->path ? m->path : "");
    printf("ir:        %lld\n", (long long)m->ir_version);
    printf("opsets:   ");
    for (size_t i = 0; i < m->n_opsets; i++)
        printf(" %s:%lld", m->opsets[i].domain && *m->opsets[i].domain ? m->opsets[i].domain : "ai.onnx",
               (long long)m->opsets[i].version);
    printf("\nproducer:  %s %s\n", m->producer_name ? m->producer_name : "",
           m->producer_version ? m->producer_version : "");
    print_values("inputs", info->inputs, info->n_inputs);
    print_values("outputs", info->outputs, info->n_outputs);
    printf("nodes by op (%llu):\n", (unsigned long long)info->total_nodes);
    for (size_t i = 0; i < info->n_ops; i++)
        printf("  %-24s %llu\n", info->ops[i].key, (unsigned long long)info->ops[i].count);
    printf("parameters by dtype:\n");
    for (size_t i = 0; i < info->n_dtypes; i++)
        printf("  %-10s %12llu params %14llu bytes\n", info->dtypes[i].key,
               (unsigned long long)info->dtypes[i].count, (unsigned long long)info->dtypes[i].bytes);
    printf("layers:\n  %-28s %-14s %-20s %10s %8s %-8s %14s\n", "name", "op", "weight shape",
           "params", "sparsity", "dtype", "MACs");
    for (size_t i = 0; i < info->n_layers; i++) {
        const joule_info_layer *l = &info->layers[i];
        char shape[128];
        joule_shape_format(&l->weight_shape, shape, sizeof shape);
        printf("  %-28.28s %-14s %-20s %10llu %7.2f%% %-8s %14llu\n", l->name, l->op_type, shape,
               (unsigned long long)l->params, 100.0 * l->sparsity, joule_dtype_name(l->dtype),
               (unsigned long long)l->macs);
    }
    printf("totals:    %llu parameters, %llu bytes, %llu MACs%s\n",
           (unsigned long long)info->total_params, (unsigned long long)info->total_bytes,
           (unsigned long long)info->total_macs,
           info->macs_assumed_batch1 ? " (unknown dims taken as 1)" : "");
}

int joule_cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    cli_shapes shapes = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--input-shape") == 0) {
            if (i + 1 == argc)
                return cli_usage("info", "--input-shape needs NAME=DIMS");
            int rc = cli_add_shape("info", &shapes, argv[++i]);
            if (rc)
                return rc;
        } else if (strncmp(argv[i], "--input-shape=", 14) == 0) {
            int rc = cli_add_shape("info", &shapes, argv[i] + 14);
            if (rc)
                return rc;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("info", "unknown option '%s'", argv[i]);
        } else if (path) {
            return cli_usage("info", "one model at a time ('%s' and '%s')", path, argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path)
        return cli_usage("info", "no model given");
    joule_error err;
    joule_model *m = NULL;
    if (joule_model_load(path, &m, &err))
        return cli_error("info", &err);
    joule_info *info = NULL;
    int rc = 0;
    if (joule_model_info(m, shapes.shapes, shapes.n, &info, &err)) {
        rc = cli_error("info", &err);
    } else if (json) {
        char *s = NULL;
        if (joule_info_json(m, info, &s, &err))
            rc = cli_error("info", &err);
        else
            printf("%s\n", s);
        free(s);
    } else {
        print_text(m, info);
    }
    joule_info_free(info);
    joule_model_free(m);
    return rc;
}
