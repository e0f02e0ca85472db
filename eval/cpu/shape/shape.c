/* eval/cpu/shape/shape.c: the cpu kernel table of the data-movement family (layout, indexing,
 * scattering, resizing, selection and constant-making ops). One kernel per op: the fast paths (merged contiguous
 * dims, memcpy runs, tiled transposes) live inside the shared copy engines in common.c, which
 * the tests check against plain index loops. */
#include "eval/cpu/shape/shape_internal.h"

#define K(op, nm, sup, fn)                                                                         \
    {.op_type = op, .domain = "", .name = "cpu.shape." nm, .supports = sup, .run = fn}
/* with index tables in planned scratch */
#define KP(op, nm, sup, prep, fn)                                                                  \
    {.op_type = op, .domain = "", .name = "cpu.shape." nm, .supports = sup, .prepare = prep,      \
     .run = fn, .destroy = jsk_destroy_state}

const joule_kernel joule_cpu_kernels_shape[] = {
    K("Reshape", "reshape", jsk_copy_supports, jsk_copy_run),
    K("Flatten", "flatten", jsk_copy_supports, jsk_copy_run),
    K("Squeeze", "squeeze", jsk_copy_supports, jsk_copy_run),
    K("Unsqueeze", "unsqueeze", jsk_copy_supports, jsk_copy_run),
    K("Identity", "identity", jsk_copy_supports, jsk_copy_run),
    K("Dropout", "dropout", jsk_dropout_supports, jsk_dropout_run),
    K("Transpose", "transpose", jsk_transpose_supports, jsk_transpose_run),
    K("Concat", "concat", jsk_concat_supports, jsk_concat_run),
    K("Split", "split", jsk_split_supports, jsk_split_run),
    K("Slice", "slice", jsk_slice_supports, jsk_slice_run),
    K("Gather", "gather", jsk_gather_supports, jsk_gather_run),
    K("GatherElements", "gather_elements", jsk_gather_elements_supports, jsk_gather_elements_run),
    K("ScatterElements", "scatter_elements", jsk_scatter_elements_supports,
      jsk_scatter_elements_run),
    K("Scatter", "scatter", jsk_scatter_elements_supports, jsk_scatter_elements_run),
    K("ScatterND", "scatter_nd", jsk_scatter_nd_supports, jsk_scatter_nd_run),
    K("ReverseSequence", "reverse_sequence", jsk_reverse_sequence_supports,
      jsk_reverse_sequence_run),
    KP("TopK", "topk", jsk_topk_supports, jsk_topk_prepare, jsk_topk_run),
    K("Trilu", "trilu", jsk_trilu_supports, jsk_trilu_run),
    K("EyeLike", "eye_like", jsk_eye_like_supports, jsk_eye_like_run),
    K("OneHot", "one_hot", jsk_one_hot_supports, jsk_one_hot_run),
    K("Shape", "shape", jsk_shape_supports, jsk_shape_run),
    K("Size", "size", jsk_shape_supports, jsk_size_run),
    K("Expand", "expand", jsk_expand_supports, jsk_expand_run),
    K("Tile", "tile", jsk_tile_supports, jsk_tile_run),
    KP("Pad", "pad", jsk_pad_supports, jsk_pad_prepare, jsk_pad_run),
    KP("Resize", "resize", jsk_resize_supports, jsk_resize_prepare, jsk_resize_run),
    K("DepthToSpace", "depth_to_space", jsk_depth_to_space_supports, jsk_depth_to_space_run),
    K("SpaceToDepth", "space_to_depth", jsk_depth_to_space_supports, jsk_space_to_depth_run),
    K("Constant", "constant", jsk_constant_supports, jsk_constant_run),
    K("ConstantOfShape", "constant_of_shape", jsk_constant_of_shape_supports,
      jsk_constant_of_shape_run),
    K("Range", "range", jsk_range_supports, jsk_range_run),
    {.op_type = NULL},
};
