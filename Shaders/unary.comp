#version 450
// unary.comp — element-wise Y = f(X): the ONNX activations and math functions (Relu, Sigmoid, Tanh, Sqrt, Exp,
// Log, Erf, Gelu, Clip, …), Not, and Cast between the arena's two representations.
// Lowering: Lowering+Elementwise.swift (UnaryOp mirrors the OP_* codes below).
//
// One invocation per element; groups = Lowering.groups1D(count, WG) (x, y grid).
//
// Buffers are raw 32-bit words: fp32 bits for float tensors (fp16 tensors are fp32 in the arena), int32 for
// int64 / int32 / bool tensors (bool is 0 or 1). TYPES says which: bit 0 X is int, bit 1 Y is int. The
// function runs in int32 when X is int and the op has an integer meaning (Relu, Identity, Neg, Abs, Sign, Clip,
// Not, Nonzero), else in fp32 (an int X is converted first). The result is converted to Y's type on the store,
// float → int truncating toward zero, which makes OP_IDENTITY a Cast.
//
// Spec constants: 0 = WG, 1 = OP, 2 = TYPES (the lowering omits it when 0: all float).
// Bindings: 0 = X, 1 = Y.
// Push: count, alpha, beta — the op's parameters as fp32 bits (int32 bits for Clip bounds of an int X).

layout(local_size_x_id = 0) in;
#include "common.glsl"

#define OP_RELU 0u
#define OP_SIGMOID 1u
#define OP_TANH 2u
#define OP_IDENTITY 3u
#define OP_NEG 4u
#define OP_ABS 5u
#define OP_SQRT 6u
#define OP_EXP 7u
#define OP_LOG 8u
#define OP_ERF 9u
#define OP_RECIPROCAL 10u
#define OP_LEAKY_RELU 11u     // alpha
#define OP_ELU 12u            // alpha
#define OP_SELU 13u           // alpha, beta = gamma
#define OP_GELU 14u           // exact (erf)
#define OP_GELU_TANH 15u      // approximate = "tanh"
#define OP_HARD_SIGMOID 16u   // alpha, beta
#define OP_HARD_SWISH 17u
#define OP_CLIP 18u           // alpha = min, beta = max
#define OP_NOT 19u
#define OP_NONZERO 20u        // Cast to bool
#define OP_TO_HALF 21u        // Cast to float16: round to the nearest fp16 value, kept in fp32
#define OP_SIGN 22u
#define OP_FLOOR 23u
#define OP_CEIL 24u
#define OP_ROUND 25u          // half to even
#define OP_SIN 26u
#define OP_COS 27u
#define OP_SOFTPLUS 28u
#define OP_SOFTSIGN 29u
#define OP_MISH 30u
#define OP_SCALE 31u          // alpha · x (Mean's last step)
#define OP_TAN 32u
#define OP_ASIN 33u
#define OP_ACOS 34u
#define OP_ATAN 35u
#define OP_SINH 36u
#define OP_COSH 37u
#define OP_ASINH 38u
#define OP_ACOSH 39u
#define OP_ATANH 40u

layout(constant_id = 1) const uint OP = OP_RELU;
layout(constant_id = 2) const uint TYPES = 0u;

const bool X_INT = (TYPES & 1u) != 0u;
const bool Y_INT = (TYPES & 2u) != 0u;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { uint X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { uint Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint alpha;
    uint beta;
} pc;                           // 12 bytes

#define NAN uintBitsToFloat(0x7FC00000u)
#define INF uintBitsToFloat(0x7F800000u)

bool hasIntegerMeaning() {
    return OP == OP_RELU || OP == OP_IDENTITY || OP == OP_NEG || OP == OP_ABS || OP == OP_SIGN || OP == OP_CLIP
        || OP == OP_NOT || OP == OP_NONZERO;
}

// The builtins that cancel near 0 (tanh as (e²ˣ − 1) / (e²ˣ + 1), log(1 + x), eˣ − 1, asinh, atanh) lose
// up to 1e-3 relative there on lavapipe; these keep ~3e-7 everywhere. (asin and acos go through atan: lavapipe's
// builtins are accurate to only ~3e-4.)

// log(1 + x): Goldberg's trick cancels the rounding of 1 + x.
float log1pAccurate(float x) {
    float u = 1.0 + x;
    return u == 1.0 ? x : log(u) * x / (u - 1.0);
}

// eˣ − 1: Taylor series below |x| = 0.5 (the first dropped term is < 1e-8 relative).
float expm1Accurate(float x) {
    if (abs(x) >= 0.5) {
        return exp(x) - 1.0;
    }
    float p = 1.0 / 40320.0;
    p = p * x + 1.0 / 5040.0;
    p = p * x + 1.0 / 720.0;
    p = p * x + 1.0 / 120.0;
    p = p * x + 1.0 / 24.0;
    p = p * x + 1.0 / 6.0;
    p = p * x + 0.5;
    p = p * x + 1.0;
    return x * p;
}


// log(1 + eˣ) without overflow for large x.
float softplus(float x) {
    return x > 0.0 ? x + log1pAccurate(exp(-x)) : log1pAccurate(exp(x));
}

// The nearest fp16 value (ties to even) as fp32: fp16 normals keep 10 of fp32's 23 mantissa bits, fp16
// subnormals are multiples of 2⁻²⁴, and magnitudes that round beyond 65504 overflow to infinity.
float roundToHalf(float x) {
    if (isnan(x) || isinf(x)) {
        return x;
    }
    uint bits = floatBitsToUint(x);
    uint signBit = bits & 0x80000000u;
    float a = abs(x);
    if (a < 6.103515625e-05) {                  // 2⁻¹⁴, the smallest fp16 normal
        float m = roundEven(a * 16777216.0) * 5.9604644775390625e-08;
        return uintBitsToFloat(signBit | floatBitsToUint(m));
    }
    bits += 0xFFFu + ((bits >> 13) & 1u);
    bits &= 0xFFFFE000u;
    float r = uintBitsToFloat(bits);
    return abs(r) > 65504.0 ? uintBitsToFloat(signBit | 0x7F800000u) : r;
}

float floatOp(float x) {
    float alpha = uintBitsToFloat(pc.alpha);
    float beta = uintBitsToFloat(pc.beta);
    switch (OP) {
    case OP_RELU: return max(x, 0.0);
    case OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case OP_TANH: return tanhAccurate(x);
    case OP_IDENTITY: return x;
    case OP_NEG: return -x;
    case OP_ABS: return abs(x);
    case OP_SQRT: return x < 0.0 ? NAN : sqrt(x);
    case OP_EXP: return exp(x);
    case OP_LOG: return x < 0.0 ? NAN : (x == 0.0 ? -INF : log(x));
    case OP_ERF: return erfApprox(x);
    case OP_RECIPROCAL: return 1.0 / x;
    case OP_LEAKY_RELU: return x < 0.0 ? alpha * x : x;
    case OP_ELU: return x < 0.0 ? alpha * expm1Accurate(x) : x;
    case OP_SELU: return x > 0.0 ? beta * x : beta * alpha * expm1Accurate(x);
    case OP_GELU: return 0.5 * x * (1.0 + erfApprox(x * 0.70710678118654752));
    case OP_GELU_TANH: return 0.5 * x * (1.0 + tanhAccurate(0.79788456080286536 * (x + 0.044715 * x * x * x)));
    case OP_HARD_SIGMOID: return clamp(alpha * x + beta, 0.0, 1.0);
    case OP_HARD_SWISH: return x * clamp(x / 6.0 + 0.5, 0.0, 1.0);
    case OP_CLIP: return min(max(x, alpha), beta);
    case OP_NOT: return x == 0.0 ? 1.0 : 0.0;
    case OP_NONZERO: return x != 0.0 ? 1.0 : 0.0;
    case OP_TO_HALF: return roundToHalf(x);
    case OP_SIGN: return sign(x);
    case OP_FLOOR: return floor(x);
    case OP_CEIL: return ceil(x);
    case OP_ROUND: return roundEven(x);
    case OP_SIN: return sin(x);
    case OP_COS: return cos(x);
    case OP_SOFTPLUS: return softplus(x);
    case OP_SOFTSIGN: return x / (1.0 + abs(x));
    case OP_MISH: return x * tanhAccurate(softplus(x));
    case OP_SCALE: return alpha * x;
    case OP_TAN: return tan(x);
    case OP_ASIN: return abs(x) > 1.0 ? NAN : atan(x / sqrt((1.0 - x) * (1.0 + x)));
    case OP_ACOS: return abs(x) > 1.0 ? NAN : 2.0 * atan(sqrt((1.0 - x) / (1.0 + x)));
    case OP_ATAN: return atan(x);
    case OP_SINH: return sinh(x);
    case OP_COSH: return cosh(x);
    case OP_ASINH: {
        float a = abs(x);
        float r = a > 1e18 ? log(a) + 0.69314718055994531 : log1pAccurate(a + a * a / (1.0 + sqrt(1.0 + a * a)));
        return x < 0.0 ? -r : r;
    }
    case OP_ACOSH: return x < 1.0 ? NAN : (x > 1e18 ? log(x) + 0.69314718055994531
                                                    : log1pAccurate((x - 1.0) + sqrt((x - 1.0) * (x + 1.0))));
    case OP_ATANH: return abs(x) > 1.0 ? NAN : (x == 1.0 ? INF : 0.5 * log1pAccurate(2.0 * x / (1.0 - x)));
    default: return NAN;
    }
}

int intOp(int x) {
    switch (OP) {
    case OP_RELU: return max(x, 0);
    case OP_NEG: return -x;
    case OP_ABS: return abs(x);
    case OP_SIGN: return sign(x);
    case OP_CLIP: return min(max(x, int(pc.alpha)), int(pc.beta));
    case OP_NOT: return x == 0 ? 1 : 0;
    case OP_NONZERO: return x != 0 ? 1 : 0;
    default: return x;                          // OP_IDENTITY
    }
}

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    uint bits = X[i];
    if (X_INT && hasIntegerMeaning()) {
        int r = intOp(int(bits));
        Y[i] = Y_INT ? uint(r) : floatBitsToUint(float(r));
    } else {
        float r = floatOp(X_INT ? float(int(bits)) : uintBitsToFloat(bits));
        Y[i] = Y_INT ? uint(int(r)) : floatBitsToUint(r);
    }
}
