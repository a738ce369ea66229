// CPU references of the data-movement ops (Transpose, Slice, Concat, Split, Gather, Expand, Tile, Pad, Trilu,
// Resize), written from the ONNX operator spec with explicit coordinates and sharing nothing with the compiler
// (no strides algebra, no tap tables). Values travel as [Double] so int64 data goes through the same loops.
// Owned by the data-movement family.

import Foundation

extension ReferenceOps {
    /// Calls `value` with the coordinates of every element of `shape`, in row-major order.
    static func generate(_ shape: [Int], _ value: ([Int]) -> Double) -> [Double] {
        let total = count(shape)
        var out: [Double] = []
        out.reserveCapacity(total)
        var c = [Int](repeating: 0, count: shape.count)
        for _ in 0..<total {
            out.append(value(c))
            var d = shape.count - 1
            while d >= 0 {
                c[d] += 1
                if c[d] < shape[d] { break }
                c[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// Row-major flat index of coordinates `c` in `shape`.
    static func flat(_ c: [Int], _ shape: [Int]) -> Int {
        var index = 0
        for d in shape.indices { index = index * shape[d] + c[d] }
        return index
    }

    static func transpose(_ x: [Double], _ shape: [Int], perm: [Int]) -> (y: [Double], shape: [Int]) {
        let out = perm.map { shape[$0] }
        let y = generate(out) { c in
            var source = [Int](repeating: 0, count: shape.count)
            for (i, p) in perm.enumerated() { source[p] = c[i] }
            return x[flat(source, shape)]
        }
        return (y, out)
    }

    /// Slice, opset 10+ semantics, written out per the spec's clamping rules.
    static func slice(_ x: [Double], _ shape: [Int], starts: [Int], ends: [Int], axes: [Int]? = nil,
                      steps: [Int]? = nil) -> (y: [Double], shape: [Int]) {
        let rank = shape.count
        var start = [Int](repeating: 0, count: rank), step = [Int](repeating: 1, count: rank)
        var out = shape
        for i in starts.indices {
            let a = (axes?[i] ?? i) < 0 ? (axes?[i] ?? i) + rank : (axes?[i] ?? i)
            let s = steps?[i] ?? 1
            let dim = shape[a]
            var b = starts[i] < 0 ? starts[i] + dim : starts[i]
            var e = ends[i] < 0 ? ends[i] + dim : ends[i]
            if s > 0 {
                b = min(max(b, 0), dim)
                e = min(max(e, 0), dim)
            } else {
                b = min(max(b, 0), dim - 1)
                e = min(max(e, -1), dim - 1)
            }
            var n = 0
            var v = b
            while s > 0 ? v < e : v > e {
                n += 1
                v += s
            }
            start[a] = b
            step[a] = s
            out[a] = n
        }
        let y = generate(out) { c in
            x[flat(c.indices.map { start[$0] + c[$0] * step[$0] }, shape)]
        }
        return (y, out)
    }

    static func concat(_ parts: [(values: [Double], shape: [Int])], axis: Int) -> (y: [Double], shape: [Int]) {
        var out = parts[0].shape
        out[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        let y = generate(out) { c in
            var c = c
            for part in parts {
                if c[axis] < part.shape[axis] { return part.values[flat(c, part.shape)] }
                c[axis] -= part.shape[axis]
            }
            return .nan
        }
        return (y, out)
    }

    static func split(_ x: [Double], _ shape: [Int], axis: Int, sizes: [Int]) -> [(y: [Double], shape: [Int])] {
        var start = 0
        return sizes.map { size in
            var out = shape
            out[axis] = size
            let offset = start
            start += size
            return (generate(out) { c in
                var c = c
                c[axis] += offset
                return x[flat(c, shape)]
            }, out)
        }
    }

    static func gather(_ x: [Double], _ shape: [Int], indices: [Int], indexShape: [Int], axis: Int) -> (y: [Double], shape: [Int]) {
        let out = Array(shape[..<axis]) + indexShape + Array(shape[(axis + 1)...])
        let y = generate(out) { c in
            let j = flat(Array(c[axis..<(axis + indexShape.count)]), indexShape)
            let index = indices[j] < 0 ? indices[j] + shape[axis] : indices[j]
            let source = Array(c[..<axis]) + [index] + Array(c[(axis + indexShape.count)...])
            return x[flat(source, shape)]
        }
        return (y, out)
    }

    static func expand(_ x: [Double], _ shape: [Int], to target: [Int]) -> (y: [Double], shape: [Int]) {
        let rank = max(shape.count, target.count)
        let a = [Int](repeating: 1, count: rank - shape.count) + shape
        let b = [Int](repeating: 1, count: rank - target.count) + target
        let out = zip(a, b).map { max($0, $1) }
        let y = generate(out) { c in x[flat(c.indices.map { a[$0] == 1 ? 0 : c[$0] }, a)] }
        return (y, out)
    }

    static func tile(_ x: [Double], _ shape: [Int], repeats: [Int]) -> (y: [Double], shape: [Int]) {
        let out = zip(shape, repeats).map { $0 * $1 }
        let y = generate(out) { c in x[flat(c.indices.map { c[$0] % shape[$0] }, shape)] }
        return (y, out)
    }

    /// Pad with mode constant / reflect / edge / wrap; pads = [begin…, end…] (negative crops).
    static func pad(_ x: [Double], _ shape: [Int], pads: [Int], mode: String, value: Double = 0) -> (y: [Double], shape: [Int]) {
        let rank = shape.count
        let out = shape.indices.map { shape[$0] + pads[$0] + pads[rank + $0] }
        let y = generate(out) { c in
            var source: [Int] = []
            for d in 0..<rank {
                var i = c[d] - pads[d]
                let n = shape[d]
                if i < 0 || i >= n {
                    switch mode {
                    case "edge": i = min(max(i, 0), n - 1)
                    case "wrap": i = ((i % n) + n) % n
                    case "reflect":
                        while i < 0 || i >= n { i = i < 0 ? -i : 2 * (n - 1) - i }
                    default: return value
                    }
                }
                source.append(i)
            }
            return x[flat(source, shape)]
        }
        return (y, out)
    }

    static func trilu(_ x: [Double], _ shape: [Int], k: Int, upper: Bool) -> [Double] {
        generate(shape) { c in
            let row = c[c.count - 2], col = c[c.count - 1]
            let keep = upper ? col - row >= k : col - row <= k
            return keep ? x[flat(c, shape)] : 0
        }
    }

    /// Resize of the last two dims of an NCHW tensor by `scales` (output = floor(in · scale)), nearest or
    /// (bi)linear, per the ONNX spec's coordinate transformations.
    static func resize2D(_ x: [Double], _ shape: [Int], scales: (h: Double, w: Double), mode: String,
                         coordinate: String, nearest: String = "round_prefer_floor") -> (y: [Double], shape: [Int]) {
        let (n, ch, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let oh = Int(Double(h) * scales.h), ow = Int(Double(w) * scales.w)
        func original(_ o: Int, scale: Double, inSize: Int, outSize: Int) -> Double {
            let o = Double(o)
            switch coordinate {
            case "asymmetric": return o / scale
            case "align_corners": return outSize == 1 ? 0 : o * Double(inSize - 1) / Double(outSize - 1)
            case "pytorch_half_pixel": return outSize > 1 ? (o + 0.5) / scale - 0.5 : -0.5
            default: return (o + 0.5) / scale - 0.5
            }
        }
        func round(_ v: Double) -> Int {
            let f = v.rounded(.down), frac = v - f
            switch nearest {
            case "floor": return Int(f)
            case "ceil": return Int(v.rounded(.up))
            case "round_prefer_ceil": return frac >= 0.5 ? Int(f) + 1 : Int(f)
            default: return frac > 0.5 ? Int(f) + 1 : Int(f)
            }
        }
        func at(_ b: Int, _ yy: Int, _ xx: Int) -> Double {
            x[(b * h + min(max(yy, 0), h - 1)) * w + min(max(xx, 0), w - 1)]
        }
        let out = [n, ch, oh, ow]
        let y = generate(out) { c in
            let b = c[0] * ch + c[1]
            let sy = original(c[2], scale: scales.h, inSize: h, outSize: oh)
            let sx = original(c[3], scale: scales.w, inSize: w, outSize: ow)
            if mode == "nearest" { return at(b, round(sy), round(sx)) }
            let y0 = Int(sy.rounded(.down)), x0 = Int(sx.rounded(.down))
            let fy = sy - Double(y0), fx = sx - Double(x0)
            return (1 - fy) * ((1 - fx) * at(b, y0, x0) + fx * at(b, y0, x0 + 1))
                + fy * ((1 - fx) * at(b, y0 + 1, x0) + fx * at(b, y0 + 1, x0 + 1))
        }
        return (y, out)
    }
}
