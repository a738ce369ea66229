#version 450
// binary.comp — element-wise Y = act(A op B) with numpy broadcasting: ONNX Add, Sub, Mul, Div, Pow, Max, Min,
// Mod, PRelu, Equal, Less, LessOrEqual, Greater, GreaterOrEqual, And, Or, Xor (variadic Max / Min / Sum / Mean
// are chains of these). Lowering: Lowering+Elementwise.swift (BinaryOp mirrors the OP_* codes below).
//
// The lowering right-aligns both operands to the output's rank, gives a broadcast dim stride 0, then
// drops size-1 dims and merges neighbouring dims that are contiguous in both operands, so the common
// cases (same shape; per-channel bias; scalar) reach this kernel with rank 1 or 2:
//
//   out index i ──► coordinates (c0 … c[rank-1]) of `shape` (innermost last)
//               ──► a = Σ c_d · aStride[d],  b = Σ c_d · bStride[d]
//
// Buffers are raw 32-bit words: fp32 bits for float tensors (fp16 tensors are fp32 in the arena), int32 for
// int64 / int32 / bool tensors (bool is 0 or 1). TYPES says which: bit 0 A is int, bit 1 B is int, bit 2 Y is
// int. The op runs in int32 when A and B are both int, else in fp32 (an int operand is converted), so mixed
// Pow(float, int64) and Pow(int32, float) need no Cast; the result is converted to Y's type on the store
// (comparisons give 1 or 0; float → int truncates toward zero, as numpy's astype does).
//
// One invocation per output element; groups = Lowering.groups1D(count, WG) (x, y grid).
//
// Operands are read through strides from an element offset, so a slice or transpose copied for this op alone is read
// in place (a GEGLU's two halves of one product); B_ACTIVATION applies an activation to B first (Mul(A, gelu(B)),
// `fuseGatedActivation`).
//
// Spec constants: 0 = WG, 1 = OP, 2 = ACTIVATION, 3 = TYPES (the lowering omits it when 0 and 4 is none: all float),
// 4 = B_ACTIVATION.
// Bindings: 0 = A, 1 = B, 2 = Y.

layout(local_size_x_id = 0) in;
#include "common.glsl"

#define MAX_RANK 6

#define OP_ADD 0u
#define OP_SUB 1u
#define OP_MUL 2u
#define OP_DIV 3u
#define OP_POW 4u
#define OP_MAX 5u
#define OP_MIN 6u
#define OP_MOD 7u             // remainder with the divisor's sign (ONNX Mod fmod = 0, Python's %)
#define OP_FMOD 8u            // remainder with the dividend's sign (fmod = 1, C's fmod and %)
#define OP_EQUAL 9u
#define OP_LESS 10u
#define OP_LESS_EQUAL 11u
#define OP_GREATER 12u
#define OP_GREATER_EQUAL 13u
#define OP_AND 14u
#define OP_OR 15u
#define OP_XOR 16u
#define OP_PRELU 17u          // A < 0 ? A · B : A

layout(constant_id = 1) const uint OP = OP_ADD;
layout(constant_id = 2) const uint ACTIVATION = ACT_NONE;
layout(constant_id = 3) const uint TYPES = 0u;
layout(constant_id = 4) const uint B_ACTIVATION = ACT_NONE;  // applied to a float B before the op (a gated unit)

const bool A_INT = (TYPES & 1u) != 0u;
const bool B_INT = (TYPES & 2u) != 0u;
const bool Y_INT = (TYPES & 4u) != 0u;

layout(std430, set = 0, binding = 0) readonly buffer ABuffer { uint A[]; };
layout(std430, set = 0, binding = 1) readonly buffer BBuffer { uint B[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { uint Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint rank;                 // ≤ MAX_RANK
    uint shape[MAX_RANK];      // output dims, innermost at rank-1
    uint aStride[MAX_RANK];    // element strides (0 where broadcast)
    uint bStride[MAX_RANK];
    uint aOffset, bOffset;     // the element each operand starts at (a view of a larger tensor)
} pc;                          // 88 bytes

#define NAN uintBitsToFloat(0x7FC00000u)
#define INF uintBitsToFloat(0x7F800000u)

// ---- int32 ----

// Truncating division on magnitudes: defined for every operand pair (INT_MIN / -1 wraps), and 0 for a zero
// divisor, which ONNX leaves undefined but which would trap on a CPU device (lavapipe runs x86 idiv).
int divTrunc(int x, int y) {
    if (y == 0) {
        return 0;
    }
    uint q = uint(abs(x)) / uint(abs(y));
    return (x < 0) != (y < 0) ? -int(q) : int(q);
}

int intPow(int x, int y) {
    if (y < 0) {                               // only ±1 have integer reciprocals
        return x == 1 ? 1 : (x == -1 ? ((y & 1) != 0 ? -1 : 1) : 0);
    }
    int r = 1;
    uint e = uint(y);
    while (e != 0u) {
        if ((e & 1u) != 0u) {
            r *= x;
        }
        x *= x;
        e >>= 1u;
    }
    return r;
}

int intOp(int x, int y) {
    switch (OP) {
    case OP_ADD: return x + y;
    case OP_SUB: return x - y;
    case OP_MUL: return x * y;
    case OP_DIV: return divTrunc(x, y);
    case OP_POW: return intPow(x, y);
    case OP_MAX: return max(x, y);
    case OP_MIN: return min(x, y);
    case OP_MOD:
    case OP_FMOD: {
        int r = x - divTrunc(x, y) * y;
        if (y == 0) {
            r = 0;
        }
        if (OP == OP_MOD && r != 0 && (r < 0) != (y < 0)) {
            r += y;
        }
        return r;
    }
    case OP_EQUAL: return x == y ? 1 : 0;
    case OP_LESS: return x < y ? 1 : 0;
    case OP_LESS_EQUAL: return x <= y ? 1 : 0;
    case OP_GREATER: return x > y ? 1 : 0;
    case OP_GREATER_EQUAL: return x >= y ? 1 : 0;
    case OP_AND: return (x != 0 && y != 0) ? 1 : 0;
    case OP_OR: return (x != 0 || y != 0) ? 1 : 0;
    case OP_XOR: return ((x != 0) != (y != 0)) ? 1 : 0;
    default: return x < 0 ? x * y : x;         // OP_PRELU
    }
}

// ---- fp32 ----

// C's fmod: x − trunc(x / y) · y with one rounding (exact when the quotient is right), then one correction
// step for a quotient that x / y rounded across an integer. Exact while |x / y| < 2²⁴.
float floatFmod(float x, float y) {
    if (isinf(x) || isnan(x) || isnan(y) || y == 0.0) {
        return NAN;
    }
    if (isinf(y)) {
        return x;
    }
    float q = trunc(x / y);
    precise float r = fma(-q, y, x);
    float ay = abs(y);
    float sx = x < 0.0 ? -1.0 : 1.0;
    if (r != 0.0 && (r < 0.0) != (x < 0.0)) {
        r += sx * ay;
    } else if (abs(r) >= ay) {
        r -= sx * ay;
    }
    return r;
}

// Python's %: the remainder takes the divisor's sign (a zero remainder too).
float floatMod(float x, float y) {
    float r = floatFmod(x, y);
    if (r == 0.0) {
        return y < 0.0 ? -0.0 : 0.0;
    }
    return (r < 0.0) != (y < 0.0) ? r + y : r;
}

// pow as numpy computes it: integral exponents (the common x², x³, x⁻¹) by repeated squaring, which is exact
// for integer results and defined for negative bases; other exponents of a negative base are NaN.
float floatPow(float x, float y) {
    if (y == 0.0) {
        return 1.0;
    }
    if (isnan(x) || isnan(y)) {
        return NAN;
    }
    bool integral = trunc(y) == y;
    if (integral && abs(y) <= 64.0) {
        float r = 1.0;
        float b = x;
        uint e = uint(abs(y));
        while (e != 0u) {
            if ((e & 1u) != 0u) {
                r *= b;
            }
            b *= b;
            e >>= 1u;
        }
        return y < 0.0 ? 1.0 / r : r;
    }
    if (x == 0.0) {
        return y > 0.0 ? 0.0 : INF;
    }
    if (x < 0.0) {
        if (!integral) {
            return NAN;
        }
        float m = pow(-x, y);
        return floatFmod(y, 2.0) != 0.0 ? -m : m;
    }
    return pow(x, y);
}

float floatOp(float x, float y) {
    switch (OP) {
    case OP_ADD: return x + y;
    case OP_SUB: return x - y;
    case OP_MUL: return x * y;
    case OP_DIV: return x / y;
    case OP_POW: return floatPow(x, y);
    case OP_MAX: return max(x, y);
    case OP_MIN: return min(x, y);
    case OP_MOD: return floatMod(x, y);
    case OP_FMOD: return floatFmod(x, y);
    case OP_EQUAL: return x == y ? 1.0 : 0.0;
    case OP_LESS: return x < y ? 1.0 : 0.0;
    case OP_LESS_EQUAL: return x <= y ? 1.0 : 0.0;
    case OP_GREATER: return x > y ? 1.0 : 0.0;
    case OP_GREATER_EQUAL: return x >= y ? 1.0 : 0.0;
    case OP_AND: return (x != 0.0 && y != 0.0) ? 1.0 : 0.0;
    case OP_OR: return (x != 0.0 || y != 0.0) ? 1.0 : 0.0;
    case OP_XOR: return ((x != 0.0) != (y != 0.0)) ? 1.0 : 0.0;
    default: return x < 0.0 ? x * y : x;       // OP_PRELU
    }
}

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    uint rest = i;
    uint a = pc.aOffset;
    uint b = pc.bOffset;
    for (int d = int(pc.rank) - 1; d >= 0; --d) {
        uint extent = pc.shape[d];
        uint q = rest / extent;
        uint c = rest - q * extent;
        rest = q;
        a += c * pc.aStride[d];
        b += c * pc.bStride[d];
    }
    uint x = A[a];
    uint y = B[b];
    if (A_INT && B_INT) {
        int r = intOp(int(x), int(y));
        if (ACTIVATION == ACT_RELU) {
            r = max(r, 0);
        }
        Y[i] = Y_INT ? uint(r) : floatBitsToUint(float(r));
    } else {
        float r = floatOp(A_INT ? float(int(x)) : uintBitsToFloat(x),
                          B_INT ? float(int(y)) : activate(uintBitsToFloat(y), B_ACTIVATION));
        r = activate(r, ACTIVATION);
        Y[i] = Y_INT ? uint(int(r)) : floatBitsToUint(r);
    }
}
