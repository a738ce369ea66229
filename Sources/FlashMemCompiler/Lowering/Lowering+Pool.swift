// Pooling: MaxPool (with its optional Indices output, storage_order 0 or 1) / AveragePool over 1, 2 or 3
// spatial dims (pads, auto_pad, strides, dilations, ceil_mode, count_include_pad) → pool.comp;
// GlobalAveragePool (any spatial rank) → global_avgpool.comp.

import FMBFormat

extension LoweringContext {
    func lowerPool(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        try requireFloat(n, [x, y])
        let isMax = n.op == "MaxPool"
        let indices = isMax && n.node.outputs.count > 1 && !n.node.outputs[1].isEmpty ? n.node.outputs[1] : nil
        let storageOrder = isMax ? n.node.int("storage_order", default: 0) : 0
        guard storageOrder == 0 || storageOrder == 1 else {
            throw error(n, "storage_order = \(storageOrder) is not 0 (row-major) or 1 (column-major)")
        }
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        let window = try poolWindow(n, xShape: xShape, yShape: yShape)
        let spatial = Array(xShape.dropFirst(2)), outSpatial = Array(yShape.dropFirst(2))
        if let indices {
            guard let dtype = dtype(indices), !dtype.isFloat else {
                throw error(n, "the Indices output '\(indices)' must be an integer tensor")
            }
        }

        // Leading spatial dims of size 1 make every rank a 3-D pool.
        let lead = 3 - spatial.count
        func padded(_ values: [Int], _ fill: Int) -> [Int] { [Int](repeating: fill, count: lead) + values }
        let countPad: UInt32 = !isMax && n.node.int("count_include_pad", default: 0) != 0 ? 1 : 0
        let indexOrder: UInt32 = indices == nil ? 0 : UInt32(storageOrder) + 1
        let wg = 128
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.pool,
                                                   specConstants: [UInt32(wg), isMax ? 0 : 1, countPad, indexOrder],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        // A copy made for the pool alone (SAM 2's Hiera moves channels first to pool Q) is read in place.
        var source = x
        var access = StridedAccess.contiguous(xShape)
        if let read = inPlaceRead(of: x, shape: xShape, for: n) {
            fold([read.copy], into: n)
            (source, access) = (read.source, read.view)
        }
        var push = PushConstants()
        push.append(xShape[0] * xShape[1])
        for values in [padded(spatial, 1), padded(outSpatial, 1), padded(window.kernel, 1), padded(window.strides, 1),
                       padded(window.dilations, 1), padded(window.padsBegin, 0), padded(window.padsEnd, 0)] {
            push.append(values)
        }
        push.append([xShape[1], access.strides[0], access.strides[1]])
        push.append(padded(Array(access.strides.dropFirst(2)), 0))
        push.append(access.offset)
        let count = elementCount(yShape)
        let yBinding = try write(y, for: n)
        let indicesBinding = try indices.map { try write($0, for: n) } ?? yBinding
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(source, for: n), yBinding, indicesBinding], push: push,
                 flops: Double(count * elementCount(window.kernel)),
                 bytes: Double((elementCount(xShape) + count * (indices == nil ? 1 : 2)) * 4))
    }

    /// The window of a MaxPool / AveragePool over X `xShape` (1 to 3 spatial dims), checked against Y `yShape`.
    private func poolWindow(_ n: LoweringNode, xShape: [Int], yShape: [Int]) throws -> WindowGeometry {
        guard (3...5).contains(xShape.count) else {
            throw error(n, "the input has shape \(xShape); only 1-D, 2-D and 3-D pooling (N, C and 1 to 3 spatial "
                        + "dims) is supported")
        }
        guard let kernelShape = n.node.ints("kernel_shape") else {
            throw error(n, "kernel_shape is required")
        }
        let spatial = Array(xShape.dropFirst(2)), outSpatial = Array(yShape.dropFirst(2))
        let window: WindowGeometry
        do {
            window = try WindowGeometry(node: n.node, input: spatial, kernel: kernelShape)
        } catch let e as ShapeRuleError {
            throw error(n, e.message)
        }
        let ceilMode = n.node.int("ceil_mode", default: 0) != 0
        guard yShape.count == xShape.count, yShape.prefix(2) == xShape.prefix(2), outSpatial.allSatisfy({ $0 > 0 }),
              outSpatial.indices.allSatisfy({
                  poolExtents(window, axis: $0, input: spatial[$0], ceilMode: ceilMode).contains(outSpatial[$0])
              }) else {
            let computed = Array(xShape.prefix(2)) + window.output
            throw error(n, "the output shape \(yShape) disagrees with the computed \(computed)")
        }
        return window
    }

    /// The output extents along `axis` that shape inference may have chosen: `window.output[axis]`, and with
    /// ceil_mode also the one that keeps a last window starting in the end padding (older ONNX shape
    /// inference); the kernel computes either correctly.
    private func poolExtents(_ window: WindowGeometry, axis: Int, input: Int, ceilMode: Bool) -> Set<Int> {
        guard ceilMode else { return [window.output[axis]] }
        let span = input + window.padsBegin[axis] + window.padsEnd[axis]
            - ((window.kernel[axis] - 1) * window.dilations[axis] + 1)
        return [window.output[axis], LoweringMath.ceilDiv(span, window.strides[axis]) + 1]
    }

    func lowerGlobalAveragePool(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        try requireFloat(n, [x, y])
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        guard xShape.count >= 3 else {
            throw error(n, "the input \(xShape) needs N, C and at least one spatial dim")
        }
        let nc = xShape[0] * xShape[1]
        let spatial = elementCount(Array(xShape.dropFirst(2)))
        guard elementCount(yShape) == nc else {
            throw error(n, "the output \(yShape) does not have N · C = \(nc) elements")
        }
        // One workgroup per (n, c): 64 invocations for small planes (ResNet's 7×7), 256 for large ones.
        let wg = spatial >= 4096 ? 256 : 64
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.globalAvgPool, specConstants: [UInt32(wg)],
                                                   workgroupSize: [UInt32(wg), 1, 1], sharedMemoryBytes: wg * 4))
        var push = PushConstants()
        push.append([nc, spatial])
        try emit(n, kernel: kernel, groups: try groups1D(n, items: nc, perGroup: 1),
                 bindings: [try read(x, for: n), try write(y, for: n)], push: push,
                 flops: Double(nc * spatial), bytes: Double((nc * spatial + nc) * 4))
    }
}
