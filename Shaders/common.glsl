// common.glsl — helpers every FlashMem kernel shares. Owned by the lowering (Sources/FlashMemCompiler/Lowering);
// embedded into fmc by Shaders/embed.py, so a change here needs `python3 Shaders/embed.py`.
//
// Conventions (see helper-brief / DESIGN.md):
//   * activations: fp32 (int32 for integer tensors) std430 buffers, one binding per tensor, row-major / NCHW;
//   * weights: 2D-array images of WEIGHT_FORMAT (rgba32f or rgba16f), 4 values per texel, already in the
//     order the kernel reads them; values are computed in fp32 whatever the storage format;
//   * push constants: 32-bit scalars (and arrays of them) only, so byte offset = 4 × field index;
//   * specialization constant 0 is the workgroup size x where a kernel takes it from one.
#ifndef FM_COMMON_GLSL
#define FM_COMMON_GLSL

// The format qualifier must match the VkImage format: lavapipe lacks shaderStorageImageReadWithoutFormat,
// so fmc compiles one SPIR-V variant per format (-DWEIGHT_FORMAT=rgba32f | rgba16f).
#ifndef WEIGHT_FORMAT
#define WEIGHT_FORMAT rgba32f
#endif

// Texel t of a weight lives at x = t % W, y = (t / W) % H, layer = t / (W * H). ImageLayout.extent makes W
// and H powers of two, so kernels receive log2(W), log2(H) and use masks and shifts instead of divisions.
ivec3 weightCoord(uint t, uint log2W, uint log2H) {
    uint x = t & ((1u << log2W) - 1u);
    uint y = (t >> log2W) & ((1u << log2H) - 1u);
    uint layer = t >> (log2W + log2H);
    return ivec3(int(x), int(y), int(layer));
}

// imageLoad needs the image variable itself (a format-qualified image cannot be a function parameter
// portably), hence a macro.
#define WEIGHT_AT(img, t, log2W, log2H) imageLoad(img, weightCoord((t), (log2W), (log2H)))

// Fused activations (specialization constant ACTIVATION of the kernels that fuse one).
#define ACT_NONE 0u
#define ACT_RELU 1u

float activate(float x, uint act) {
    return act == ACT_RELU ? max(x, 0.0) : x;
}

vec4 activate(vec4 x, uint act) {
    return act == ACT_RELU ? max(x, vec4(0.0)) : x;
}

// Element-wise kernels cover more than 65535 workgroups by spreading them over a 2-D grid
// (Lowering.groups1D); this is the flat index of the invocation in that grid.
uint flatInvocation() {
    return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * gl_WorkGroupSize.x);
}

// The flat index of the workgroup in a 2-D grid (kernels with one workgroup per row / channel).
uint flatWorkGroup() {
    return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
}

#endif
