/// How `relativeError` treats a non-finite entry of the reference.
enum NonFiniteReference {
    /// Summed like any other entry, so it spoils the error (NaN or infinite: a failed comparison).
    case counted
    /// Left out of the norms, but the output must hold the same value there (NaN for NaN), else the error is
    /// infinite: for ops whose reference legitimately holds ±inf or NaN.
    case mustMatch
}

/// The relative L2 error ‖a − b‖ / ‖b‖ of an output `a` against its reference `b`, accumulated in Double.
/// Infinite when the sizes differ, `b` is empty or the sums are spoilt by a NaN, so that any tolerance fails.
func relativeError<T: BinaryFloatingPoint>(_ a: [T], _ b: [T], nonFinite: NonFiniteReference = .counted) -> T {
    guard a.count == b.count, !b.isEmpty else { return .infinity }
    var diff: Double = 0, norm: Double = 0
    for (x, y) in zip(a, b) {
        if nonFinite == .mustMatch, !y.isFinite {
            if x == y || (x.isNaN && y.isNaN) { continue }
            return .infinity
        }
        diff += Double(x - y) * Double(x - y)
        norm += Double(y) * Double(y)
    }
    let error = T((diff / max(norm, 1e-30)).squareRoot())
    return error.isNaN ? .infinity : error
}
