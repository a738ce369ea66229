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

// erf to ~4e-7 relative: a Taylor series near 0 (where 1 - erfc would cancel), Numerical Recipes' erfc
// Chebyshev fit (fractional error < 1.2e-7) elsewhere.
float erfApprox(float x) {
    float z = abs(x);
    if (z < 0.5) {
        float s = x * x;
        float p = 1.0 / 9360.0;
        p = p * s - 1.0 / 1320.0;
        p = p * s + 1.0 / 216.0;
        p = p * s - 1.0 / 42.0;
        p = p * s + 1.0 / 10.0;
        p = p * s - 1.0 / 3.0;
        p = p * s + 1.0;
        return 1.1283791670955126 * x * p;
    }
    float t = 1.0 / (1.0 + 0.5 * z);
    float p = 0.17087277;
    p = p * t - 0.82215223;
    p = p * t + 1.48851587;
    p = p * t - 1.13520398;
    p = p * t + 0.27886807;
    p = p * t - 0.18628806;
    p = p * t + 0.09678418;
    p = p * t + 0.37409196;
    p = p * t + 1.00002368;
    p = p * t - 1.26551223;
    float r = 1.0 - t * exp(p - z * z);
    return x < 0.0 ? -r : r;
}

// tanh: Taylor series below |x| = 0.3, 1 − 2 / (e²ˣ + 1) above (saturating to ±1 in fp32 beyond |x| = 9).
float tanhAccurate(float x) {
    float a = abs(x);
    if (a < 0.3) {
        float s = x * x;
        float p = -1382.0 / 155925.0;
        p = p * s + 62.0 / 2835.0;
        p = p * s - 17.0 / 315.0;
        p = p * s + 2.0 / 15.0;
        p = p * s - 1.0 / 3.0;
        p = p * s + 1.0;
        return x * p;
    }
    float r = 1.0 - 2.0 / (exp(2.0 * min(a, 9.0)) + 1.0);
    return x < 0.0 ? -r : r;
}

// Fused activations (specialization constant ACTIVATION of the kernels that fuse one): a Relu, or a GELU (exact,
// erf; or the tanh approximation) that LoweringPasses recognised and fused into the producing Gemm / MatMul / Conv.
#define ACT_NONE 0u
#define ACT_RELU 1u
#define ACT_GELU 2u
#define ACT_GELU_TANH 3u

float activate(float x, uint act) {
    if (act == ACT_RELU) return max(x, 0.0);
    if (act == ACT_GELU) return 0.5 * x * (1.0 + erfApprox(x * 0.70710678118654752));
    if (act == ACT_GELU_TANH) return 0.5 * x * (1.0 + tanhAccurate(0.79788456080286536 * (x + 0.044715 * x * x * x)));
    return x;
}

vec4 activate(vec4 x, uint act) {
    return vec4(activate(x.x, act), activate(x.y, act), activate(x.z, act), activate(x.w, act));
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
