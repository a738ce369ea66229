/// The structural checks the runtime needs before it records a single command: every index a command
/// buffer or descriptor will use is in range, every range lies inside its arena/image/data section.
/// The format validator checks more (and earlier, for files); these hold for in-memory bundles too.
extension ExecutionPlan {
    static func checkStructure(_ loaded: LoadedBundle, _ fail: (String, String) -> RuntimeError) throws {
        let bundle = loaded.bundle
        let arena = bundle.meta.arenaSize
        let dataSize = UInt64(loaded.data.count)

        for (i, kernel) in bundle.kernels.enumerated() {
            guard Int(kernel.spirv) < bundle.spirv.count else {
                throw fail("kernels[\(i)].spirv", "module \(kernel.spirv) out of range (\(bundle.spirv.count) modules)")
            }
            guard kernel.pushConstantSize % 4 == 0 else {
                throw fail("kernels[\(i)].pushConstantSize", "\(kernel.pushConstantSize) is not a multiple of 4")
            }
        }
        for (i, module) in bundle.spirv.enumerated() where module.count < 5 || module[0] != 0x0723_0203 {
            throw fail("spirv[\(i)]", "is not a SPIR-V module (\(module.count) words)")
        }
        for (i, tensor) in bundle.tensors.enumerated() {
            guard tensor.offset <= arena, tensor.size <= arena - tensor.offset else {
                throw fail("tensors[\(i)]", "\(tensor.name): range \(tensor.offset)+\(tensor.size) exceeds the arena "
                           + "(\(arena) bytes)")
            }
            if let constant = tensor.constant {
                guard constant.offset <= dataSize, constant.size <= dataSize - constant.offset else {
                    throw fail("tensors[\(i)].constant", "\(tensor.name): data range \(constant.offset)+\(constant.size) "
                               + "exceeds the data section (\(dataSize) bytes)")
                }
                guard constant.size <= tensor.size else {
                    throw fail("tensors[\(i)].constant", "\(tensor.name): \(constant.size) bytes do not fit the tensor "
                               + "(\(tensor.size) bytes)")
                }
            }
        }
        for (k, step) in bundle.program.enumerated() {
            guard Int(step.kernel) < bundle.kernels.count else {
                throw fail("program[\(k)].kernel", "kernel \(step.kernel) out of range (\(bundle.kernels.count) kernels)")
            }
            let kernel = bundle.kernels[Int(step.kernel)]
            guard step.groups.count == 3 else {
                throw fail("program[\(k)].groups", "has \(step.groups.count) values, expected 3")
            }
            guard step.bindings.count == kernel.bindings.count else {
                throw fail("program[\(k)].bindings", "has \(step.bindings.count) bindings, kernel \(kernel.name) "
                           + "declares \(kernel.bindings.count)")
            }
            guard step.pushConstants.count <= Int(kernel.pushConstantSize) else {
                throw fail("program[\(k)].pushConstants", "\(step.pushConstants.count) bytes exceed kernel "
                           + "\(kernel.name)'s \(kernel.pushConstantSize)")
            }
            for (b, binding) in step.bindings.enumerated() {
                switch (binding, kernel.bindings[b]) {
                case let (.tensor(t), .storageBuffer):
                    guard Int(t) < bundle.tensors.count else {
                        throw fail("program[\(k)].bindings[\(b)]", "tensor \(t) out of range (\(bundle.tensors.count) tensors)")
                    }
                    guard bundle.tensors[Int(t)].size > 0 else {
                        throw fail("program[\(k)].bindings[\(b)]", "tensor \(t) (\(bundle.tensors[Int(t)].name)) is empty")
                    }
                case let (.image(i), .storageImage):
                    guard Int(i) < bundle.images.count else {
                        throw fail("program[\(k)].bindings[\(b)]", "image \(i) out of range (\(bundle.images.count) images)")
                    }
                default:
                    throw fail("program[\(k)].bindings[\(b)]", "is \(binding), but kernel \(kernel.name) binding \(b) "
                               + "is \(kernel.bindings[b])")
                }
            }
        }
        for (i, image) in bundle.images.enumerated() where image.width == 0 || image.height == 0 || image.layers == 0 {
            throw fail("images[\(i)]", "\(image.name): empty extent \(image.width)x\(image.height)x\(image.layers)")
        }
        try checkChunks(bundle, dataSize: dataSize, fail)
        for (list, io) in [("inputs", bundle.meta.inputs), ("outputs", bundle.meta.outputs)] {
            for (i, binding) in io.enumerated() {
                guard Int(binding.tensor) < bundle.tensors.count else {
                    throw fail("meta.\(list)[\(i)].tensor", "tensor \(binding.tensor) out of range")
                }
                guard binding.shape.allSatisfy({ $0 >= 0 }) else {
                    throw fail("meta.\(list)[\(i)].shape", "\(binding.name): dynamic or negative dimension in \(binding.shape)")
                }
                let needed = UInt64(binding.elementCount) * 4
                guard needed <= bundle.tensors[Int(binding.tensor)].size else {
                    throw fail("meta.\(list)[\(i)]", "\(binding.name): \(binding.elementCount) elements need \(needed) "
                               + "arena bytes, tensor has \(bundle.tensors[Int(binding.tensor)].size)")
                }
            }
        }
    }

    /// Chunks lie inside their image and the data section, have the raw size their rows imply, and do not
    /// overlap one another (overlapping copies would make the result depend on copy order).
    private static func checkChunks(_ bundle: FMBundle, dataSize: UInt64,
                                    _ fail: (String, String) -> RuntimeError) throws {
        var rowsByLayer: [[UInt32]: [(y: UInt32, end: UInt32, chunk: Int)]] = [:]
        for (c, chunk) in bundle.chunks.enumerated() {
            guard Int(chunk.image) < bundle.images.count else {
                throw fail("chunks[\(c)].image", "image \(chunk.image) out of range (\(bundle.images.count) images)")
            }
            let image = bundle.images[Int(chunk.image)]
            guard chunk.layer < image.layers, chunk.rows > 0, chunk.y < image.height, chunk.rows <= image.height - chunk.y else {
                throw fail("chunks[\(c)]", "layer \(chunk.layer) rows \(chunk.y)..<\(UInt64(chunk.y) + UInt64(chunk.rows)) "
                           + "lie outside image \(image.name) (\(image.width)x\(image.height)x\(image.layers))")
            }
            let raw = UInt64(chunk.rows) * UInt64(image.width) * UInt64(image.format.texelBytes)
            guard chunk.rawSize == raw else {
                throw fail("chunks[\(c)].rawSize", "is \(chunk.rawSize), \(chunk.rows) rows of \(image.name) are \(raw) bytes")
            }
            guard chunk.payload.offset <= dataSize, chunk.payload.size <= dataSize - chunk.payload.offset else {
                throw fail("chunks[\(c)].payload", "range \(chunk.payload.offset)+\(chunk.payload.size) exceeds the data "
                           + "section (\(dataSize) bytes)")
            }
            rowsByLayer[[chunk.image, chunk.layer], default: []].append((chunk.y, chunk.y + chunk.rows, c))
        }
        for (key, spans) in rowsByLayer {
            let sorted = spans.sorted { $0.y < $1.y }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.y < a.end {
                throw fail("chunks[\(b.chunk)]", "overlaps chunks[\(a.chunk)] in image \(key[0]) layer \(key[1])")
            }
        }
    }
}
