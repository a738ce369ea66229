// Output comparison at the ONNX tolerances. Owned by fmc-conformance.
//
// Mirrors onnx.backend.test.runner.Runner.assert_similar_outputs: the shapes must be equal, the dtypes must be
// equal, and floating values must satisfy numpy's assert_allclose, |actual − expected| ≤ atol + rtol·|expected|,
// with NaN matching NaN and an infinity matching only the same infinity. One deliberate difference: integer and
// bool outputs must match exactly (numpy would apply rtol to them too, letting 1000 pass for 1001).

import FlashMemRuntime

struct Comparison {
    var elements = 0
    /// Elements outside the tolerance.
    var mismatched = 0
    /// Largest |actual − expected| over finite pairs.
    var maxAbsError = 0.0
    /// Largest |actual − expected| / |expected| over finite pairs with expected ≠ 0.
    var maxRelError = 0.0
    /// Mismatches where either side is NaN or infinite (not counted in the maxima).
    var nonFiniteMismatches = 0
    /// The first element outside the tolerance, with both values, for the report.
    var firstMismatch: (index: Int, actual: Double, expected: Double)?

    var passed: Bool { mismatched == 0 }
}

enum OutputCheck {
    case compared(Comparison)
    case shapeMismatch(actual: [Int], expected: [Int])
    case dtypeMismatch(actual: ElementType, expected: ElementType)
}

enum Tolerance {
    /// Compares one output with its reference.
    static func check(actual: HostTensor, expected: HostTensor, rtol: Double, atol: Double) -> OutputCheck {
        guard actual.shape == expected.shape else { return .shapeMismatch(actual: actual.shape, expected: expected.shape) }
        guard actual.elementType == expected.elementType else {
            return .dtypeMismatch(actual: actual.elementType, expected: expected.elementType)
        }
        guard actual.bytes.count == expected.bytes.count else {
            // The runtime promises elementCount × byteSize bytes; anything else is a runtime bug, reported as a
            // mismatch of every element rather than read out of bounds.
            var c = Comparison()
            c.elements = expected.elementCount
            c.mismatched = expected.elementCount
            return .compared(c)
        }
        switch expected.elementType {
        case .float32, .float16:
            return .compared(compareFloats(actual.floats(), expected.floats(), rtol: rtol, atol: atol))
        case .int32, .int64, .bool:
            return .compared(compareIntegers(actual.int64s(), expected.int64s()))
        }
    }

    static func compareFloats(_ actual: [Float], _ expected: [Float], rtol: Double, atol: Double) -> Comparison {
        var c = Comparison()
        c.elements = expected.count
        for i in expected.indices {
            let a = Double(actual[i]), e = Double(expected[i])
            let ok: Bool
            if e.isNaN || a.isNaN {
                ok = e.isNaN && a.isNaN
            } else if e.isInfinite || a.isInfinite {
                ok = a == e
            } else {
                let diff = abs(a - e)
                c.maxAbsError = max(c.maxAbsError, diff)
                if e != 0 { c.maxRelError = max(c.maxRelError, diff / abs(e)) }
                ok = diff <= atol + rtol * abs(e)
            }
            if !ok {
                c.mismatched += 1
                if !(a.isFinite && e.isFinite) { c.nonFiniteMismatches += 1 }
                if c.firstMismatch == nil { c.firstMismatch = (i, a, e) }
            }
        }
        return c
    }

    static func compareIntegers(_ actual: [Int64], _ expected: [Int64]) -> Comparison {
        var c = Comparison()
        c.elements = expected.count
        for i in expected.indices where actual[i] != expected[i] {
            let diff = abs(Double(actual[i]) - Double(expected[i]))
            c.maxAbsError = max(c.maxAbsError, diff)
            if expected[i] != 0 { c.maxRelError = max(c.maxRelError, diff / abs(Double(expected[i]))) }
            c.mismatched += 1
            if c.firstMismatch == nil { c.firstMismatch = (i, Double(actual[i]), Double(expected[i])) }
        }
        return c
    }
}
