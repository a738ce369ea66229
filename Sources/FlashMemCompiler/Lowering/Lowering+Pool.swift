// Pooling: MaxPool / AveragePool (1-D and 2-D, pads, strides, dilations, ceil_mode, count_include_pad)
// → pool2d.comp; GlobalAveragePool (any spatial rank) → global_avgpool.comp.

import FMBFormat

extension LoweringContext {
    func lowerPool(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        try requireFloat(n, [x, y])
        let isMax = n.op == "MaxPool"
        if isMax, n.node.outputs.count > 1, !n.node.outputs[1].isEmpty {
            throw error(n, "the Indices output of MaxPool is not supported")
        }
        if isMax, n.node.int("storage_order", default: 0) != 0 {
            throw error(n, "storage_order = 1 is not supported")
        }
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        let inShape = try nchw(n, xShape, what: "the input")
        let outShape = try nchw(n, yShape, what: "the output")
        guard let kernelShape = n.node.ints("kernel_shape") else {
            throw error(n, "kernel_shape is required")
        }
        let window = try window2D(n, spatial: Array(xShape.dropFirst(2)), kernelShape: kernelShape)
        let ceilMode = n.node.int("ceil_mode", default: 0) != 0
        // With ceil_mode, onnxruntime and newer ONNX drop a last window that starts in the end padding while
        // older shape inference keeps it; the kernel computes either correctly, so both are accepted.
        let oh = Window2D.outputExtents(input: inShape.h, kernel: window.kernel.h, stride: window.strides.h,
                                        dilation: window.dilations.h, padBegin: window.padTop,
                                        padEnd: window.padBottom, ceilMode: ceilMode)
        let ow = Window2D.outputExtents(input: inShape.w, kernel: window.kernel.w, stride: window.strides.w,
                                        dilation: window.dilations.w, padBegin: window.padLeft,
                                        padEnd: window.padRight, ceilMode: ceilMode)
        guard outShape.n == inShape.n, outShape.c == inShape.c, oh.contains(outShape.h), ow.contains(outShape.w),
              outShape.h > 0, outShape.w > 0 else {
            throw error(n, "the output shape \(yShape) disagrees with the computed [\(inShape.n), \(inShape.c), "
                        + "\(oh.max() ?? 0), \(ow.max() ?? 0)]")
        }
        let (oh0, ow0) = (outShape.h, outShape.w)
        let countPad: UInt32 = !isMax && n.node.int("count_include_pad", default: 0) != 0 ? 1 : 0
        let wg = 128
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.pool2d,
                                                   specConstants: [UInt32(wg), isMax ? 0 : 1, countPad],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        var push = PushConstants()
        push.append([inShape.n * inShape.c, inShape.h, inShape.w, oh0, ow0,
                     window.kernel.h, window.kernel.w, window.strides.h, window.strides.w,
                     window.padTop, window.padLeft, window.padBottom, window.padRight,
                     window.dilations.h, window.dilations.w])
        let count = elementCount(yShape)
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(x, for: n), try write(y, for: n)], push: push,
                 flops: Double(count * window.kernel.h * window.kernel.w),
                 bytes: Double((elementCount(xShape) + count) * 4))
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
