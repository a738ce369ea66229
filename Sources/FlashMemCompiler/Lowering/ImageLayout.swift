// Weight images: their extent, texel addressing and byte encoding. Owned by the lowering. Every weight
// image's extent comes from `ImageLayout.extent` so the kernels' addressing (common.glsl weightCoord) and
// the runtime's chunk copies agree.

import FMBFormat

public enum ImageLayout {
    /// The largest width / height a weight image gets: every Vulkan device's maxImageDimension2D is at least 4096.
    public static let maxSide = 4096
    /// The most layers a weight image gets: the least maxImageArrayLayers Vulkan allows a device.
    public static let maxLayers = 256
    /// The fewest rows of a layer: NVIDIA lays each layer out in blocks of at least 8 rows, so shorter layers
    /// would be padded in device memory.
    static let minLayerRows = 8

    /// The rows a layer of `rows` rows takes in device memory, by a conservative model of tiled image layouts:
    /// NVIDIA rounds a layer's rows up to a block of the next power of two rows, at least 8 and at most 128 (a
    /// 4096×1000 image takes 1024 rows, a 1024×37 one 64; measured with vkGetImageMemoryRequirements on the
    /// H200, `Benchmarks/imgsize`); lavapipe rounds rows up to 4. The planner sizes weight slots with it
    /// (`LoadPlanning.slotBytes`); the runtime checks the real size and re-places slots where a device pads more.
    public static func paddedRows(_ rows: Int) -> Int {
        let rows = max(rows, 1)
        let block = min(128, max(minLayerRows, nextPowerOfTwo(rows)))
        return LoweringMath.ceilDiv(rows, block) * block
    }

    /// The narrowest width a weight image of at least that many texels gets.
    static let minWidth = 1024
    /// What one more layer costs, in texels: a copy spends ~2.8 µs per layer on top of its bytes (H100 transfer
    /// queue, `Benchmarks/copyshapes`, 2026-12-08: a 1024-wide half8 image in layers of 16 rows, 256 KiB, copies
    /// at 33 GB/s, in layers of 32 rows at 40, of 256 rows at 49.6, against 49.7 into a buffer), as long as
    /// ~140 KB take at 50 GB/s: 8192 texels of 16 bytes.
    static let layerCostTexels = 8192

    /// The extent of an image holding `texels` texels, among widths w (powers of two from min(1024, nextPow2(texels))
    /// to min(maxSide, nextPow2(texels))) and, per width, r = ceil(texels / w) rows laid out as one layer of r rows
    /// (r ≤ maxSide) or layers of a power-of-two height h (8 ≤ h ≤ maxSide, h < r, at most `maxLayers` of them):
    /// of the candidates whose device texels (`paddedRows` per layer, times w) are within texels / 8 of the fewest
    /// any candidate takes, the one with the least device texels + layers · `layerCostTexels` (then the narrower).
    /// Device memory is what a budget holds and every layer is a copy of its own, so a 768 × 3072 fp16 weight and
    /// its bias (295,296 half8 texels, 289 rows of 1024) takes 5 layers of 64 rows (327,680 texels) rather than 19
    /// of 16 (311,296): 5% more memory, its copy ~30% shorter (4096 × 16 × 5 costs the same; the narrower wins).
    /// A 384 × 384 fp16 weight (37 rows of 1024 texels) would take 64 rows as one layer; 5 layers of 8 take 40.
    /// Layers of a fixed 1024 rows would pad a 1025-row image (a 1024 × 4096 weight and its bias row) to twice
    /// its size.
    /// The kernels address texels with shifts by `log2(width)` and `log2(height)` (see `log2`), so width is a
    /// power of two, and so is height whenever there are several layers; a single layer's height needs not
    /// be (t / width < height there), which keeps the padding under one row. Every count is ≥ 1.
    public static func extent(texels: Int) -> (width: Int, height: Int, layers: Int) {
        let texels = max(texels, 1)
        let widest = min(maxSide, nextPowerOfTwo(texels))
        var candidates: [(width: Int, height: Int, layers: Int, deviceTexels: Int)] = []
        var width = min(minWidth, widest)
        while width <= widest {
            let rows = LoweringMath.ceilDiv(texels, width)
            if rows <= maxSide { candidates.append((width, rows, 1, paddedRows(rows) * width)) }
            var height = maxSide
            while height >= minLayerRows {
                let layers = LoweringMath.ceilDiv(rows, height)
                if height < rows && layers <= maxLayers { candidates.append((width, height, layers, height * layers * width)) }
                height /= 2
            }
            width *= 2
        }
        // Every texel count fits 256 layers of 4096 rows 1024 texels wide: the caller's images are far smaller
        // (`maxImageBytes`), so there is always a candidate.
        let fewest = candidates.map(\.deviceTexels).min()!
        func cost(_ c: (width: Int, height: Int, layers: Int, deviceTexels: Int)) -> Int {
            c.deviceTexels + c.layers * layerCostTexels
        }
        let chosen = candidates.filter { ($0.deviceTexels - fewest) * 8 <= texels }
            .min { (cost($0), $0.width) < (cost($1), $1.width) }!
        return (chosen.width, chosen.height, chosen.layers)
    }

    /// Where texel `t` lives: x = t % width, y = (t / width) % height, layer = t / (width · height).
    public static func coordinate(texel t: Int, width: Int, height: Int) -> (x: Int, y: Int, layer: Int) {
        (t % width, (t / width) % height, t / (width * height))
    }

    /// A weight image holding `values` (`format.valuesPerTexel` per texel, already in the kernel's read order),
    /// padded with zeros to its whole extent and encoded as `format` (IEEE half with round-to-nearest-even for
    /// rgba16f and half8).
    public static func image(name: String, values: [Float], format: ImageFormat) -> WeightImage {
        let texels = LoweringMath.ceilDiv(values.count, format.valuesPerTexel)
        let (width, height, layers) = extent(texels: texels)
        let total = width * height * layers * format.valuesPerTexel
        let bytes = encode(values, format: format, paddedTo: total)
        return WeightImage(name: name, format: format, width: width, height: height, layers: layers, texels: bytes)
    }

    /// `values` as little-endian fp32 or fp16 components, zero-padded to `count` components (half8 holds the
    /// same halves as rgba16f, 8 to a texel).
    public static func encode(_ values: [Float], format: ImageFormat, paddedTo count: Int) -> [UInt8] {
        let count = max(count, values.count)
        switch format {
        case .rgba32f:
            return [UInt8](unsafeUninitializedCapacity: count * 4) { bytes, initialized in
                let out = UnsafeMutableRawBufferPointer(bytes)
                for (i, v) in values.enumerated() {
                    out.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                }
                for i in values.count..<count {
                    out.storeBytes(of: 0, toByteOffset: i * 4, as: UInt32.self)
                }
                initialized = count * 4
            }
        case .rgba16f, .half8:
            return [UInt8](unsafeUninitializedCapacity: count * 2) { bytes, initialized in
                let out = UnsafeMutableRawBufferPointer(bytes)
                for (i, v) in values.enumerated() {
                    out.storeBytes(of: Float16(v).bitPattern.littleEndian, toByteOffset: i * 2, as: UInt16.self)
                }
                for i in values.count..<count {
                    out.storeBytes(of: 0, toByteOffset: i * 2, as: UInt16.self)
                }
                initialized = count * 2
            }
        }
    }

    /// Component `i` (texel i / valuesPerTexel, lane i % valuesPerTexel) of an encoded image, widened to Float.
    /// For tests and tools.
    public static func component(_ i: Int, of image: WeightImage) -> Float {
        image.texels.withUnsafeBytes { raw in
            switch image.format {
            case .rgba32f:
                return Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            case .rgba16f, .half8:
                return Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))))
            }
        }
    }

    static func nextPowerOfTwo(_ n: Int) -> Int {
        var p = 1
        while p < n { p <<= 1 }
        return p
    }

    /// The address bits of an image side: log2 of the side rounded up to a power of two.
    static func log2(_ side: Int) -> Int {
        nextPowerOfTwo(side).trailingZeroBitCount
    }
}

/// Integer helpers of the lowering (namespaced: other parts of the module have their own).
enum LoweringMath {
    static func ceilDiv(_ a: Int, _ b: Int) -> Int {
        (a + b - 1) / b
    }
}
