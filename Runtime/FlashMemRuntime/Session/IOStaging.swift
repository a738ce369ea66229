import CVulkan

/// Host-visible staging for model inputs and outputs, plus the two command buffers that move them:
/// `upload` (staging → arena, before step 0) and `readback` (arena → staging, after the last step).
/// The arena holds fp32 for floating tensors and int32 for integer and bool tensors; conversion to and
/// from the declared element type happens here, on the host, at the boundary.
final class IOStaging {
    let host: HostBuffer
    let inputs: [IOBinding]
    let outputs: [IOBinding]
    /// Offsets in `host` of each input and output (4 bytes per element, 256-aligned).
    let inputOffsets: [UInt64]
    let outputOffsets: [UInt64]
    /// The bundle's run-time checks, their flag words' arena offsets, and where `readback` puts them in `host`.
    let checks: [RuntimeCheck]
    let checkArenaOffsets: [UInt64]
    let checkOffsets: [UInt64]

    init(device: Device, bundle: FMBundle) throws {
        let meta = bundle.meta
        inputs = meta.inputs
        outputs = meta.outputs
        var end: UInt64 = 0
        func place(_ binding: IOBinding) -> UInt64 {
            let offset = alignUp(end, 256)
            end = offset + UInt64(binding.elementCount) * 4
            return offset
        }
        inputOffsets = meta.inputs.map(place)
        outputOffsets = meta.outputs.map(place)
        checks = bundle.checks
        checkArenaOffsets = bundle.checks.map { bundle.tensors[Int($0.tensor)].offset }
        checkOffsets = bundle.checks.map { _ in
            end = alignUp(end, 8) + 8
            return end - 8
        }
        host = try HostBuffer(device: device, size: end,
                              usage: VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue,
                              cached: true, label: "input/output staging")
    }

    // MARK: Recording

    /// Copies every input into its arena tensor, then makes the writes visible to compute shaders.
    func recordUpload(_ cb: VkCommandBuffer, arena: VK.Buffer, tensors: [Tensor]) {
        for (binding, offset) in zip(inputs, inputOffsets) where binding.elementCount > 0 {
            var region = VkBufferCopy(srcOffset: offset, dstOffset: tensors[Int(binding.tensor)].offset,
                                      size: UInt64(binding.elementCount) * 4)
            vkCmdCopyBuffer(cb, host.buffer.handle, arena.handle, 1, &region)
        }
        for offset in checkArenaOffsets { vkCmdFillBuffer(cb, arena.handle, offset, 8, 0) }  // checks start clear
        memoryBarrier(cb, srcAccess: VK_ACCESS_TRANSFER_WRITE_BIT.rawValue,
                      dstAccess: VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue,
                      srcStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
                      dstStage: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue)
    }

    /// Waits for the last step's writes, copies every output to staging, makes it visible to the host.
    func recordReadback(_ cb: VkCommandBuffer, arena: VK.Buffer, tensors: [Tensor]) {
        memoryBarrier(cb, srcAccess: VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue,
                      dstAccess: VK_ACCESS_TRANSFER_READ_BIT.rawValue,
                      srcStage: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
                      dstStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue)
        for (binding, offset) in zip(outputs, outputOffsets) where binding.elementCount > 0 {
            var region = VkBufferCopy(srcOffset: tensors[Int(binding.tensor)].offset, dstOffset: offset,
                                      size: UInt64(binding.elementCount) * 4)
            vkCmdCopyBuffer(cb, arena.handle, host.buffer.handle, 1, &region)
        }
        for (arenaOffset, offset) in zip(checkArenaOffsets, checkOffsets) {
            var region = VkBufferCopy(srcOffset: arenaOffset, dstOffset: offset, size: 8)
            vkCmdCopyBuffer(cb, arena.handle, host.buffer.handle, 1, &region)
        }
        memoryBarrier(cb, srcAccess: VK_ACCESS_TRANSFER_WRITE_BIT.rawValue, dstAccess: VK_ACCESS_HOST_READ_BIT.rawValue,
                      srcStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue, dstStage: VK_PIPELINE_STAGE_HOST_BIT.rawValue)
    }

    /// The first run-time check the latest run failed (its flag words, read back by `readback`), as an error.
    func failedCheck(path: String) -> RuntimeError? {
        for (check, offset) in zip(checks, checkOffsets) {
            let words = host.bytes(at: offset, count: 8)
            guard words.load(as: UInt32.self) != 0 else { continue }
            let value = Int64(Int32(bitPattern: words.load(fromByteOffset: 4, as: UInt32.self)))
            return .checkFailed(path: path, node: check.node, reason: "index \(value) is out of range: indices must be "
                                + "within [-\(check.bound), \(check.bound - 1)]")
        }
        return nil
    }

    // MARK: Conversion

    /// Checks `given` against the model's inputs (names, element types, shapes), all or nothing, and
    /// writes each, converted to its arena form, into staging.
    func write(_ given: [HostTensor]) throws {
        let expected = inputs.map { "\($0.name): \($0.elementType) \($0.shape)" }
        func mismatch(_ reason: String) -> RuntimeError { .inputMismatch(reason: reason, expected: expected) }
        var byName: [String: HostTensor] = [:]
        for tensor in given {
            guard inputs.contains(where: { $0.name == tensor.name }) else {
                throw mismatch("unknown input \"\(tensor.name)\"")
            }
            guard byName.updateValue(tensor, forKey: tensor.name) == nil else {
                throw mismatch("input \"\(tensor.name)\" given twice")
            }
        }
        let missing = inputs.map(\.name).filter { byName[$0] == nil }
        guard missing.isEmpty else { throw mismatch("missing inputs: " + missing.joined(separator: ", ")) }
        for binding in inputs {
            let tensor = byName[binding.name]!
            guard tensor.elementType == binding.elementType else {
                throw mismatch("input \"\(binding.name)\" is \(tensor.elementType), the model expects \(binding.elementType)")
            }
            guard tensor.shape.map(Int64.init) == binding.shape else {
                throw mismatch("input \"\(binding.name)\" has shape \(tensor.shape), the model expects \(binding.shape)")
            }
            guard tensor.bytes.count == tensor.elementCount * tensor.elementType.byteSize else {
                throw mismatch("input \"\(binding.name)\" has \(tensor.bytes.count) bytes; shape \(tensor.shape) of "
                               + "\(tensor.elementType) needs \(tensor.elementCount * tensor.elementType.byteSize)")
            }
        }
        for (binding, offset) in zip(inputs, inputOffsets) {
            let tensor = byName[binding.name]!
            let destination = host.bytes(at: offset, count: binding.elementCount * 4)
            try IOStaging.toArena(tensor, into: destination, expected: expected)
        }
    }

    /// Reads every output from staging, converted to its declared element type.
    ///
    /// `storage` keeps the previous run's output arrays: when the caller has dropped them, their buffers are
    /// unique again and are overwritten in place, so large outputs do not pay fresh page faults every run
    /// (64 MiB of new pages cost ~30 ms on the H100 machine). A caller that keeps them gets a copy on write.
    func read(reusing storage: inout [[UInt8]]) -> [HostTensor] {
        if storage.count != outputs.count { storage = Array(repeating: [], count: outputs.count) }
        var result: [HostTensor] = []
        for (index, (binding, offset)) in zip(outputs, outputOffsets).enumerated() {
            var bytes = storage[index]
            storage[index] = []   // drop the session's reference so `bytes` can be unique
            let source = UnsafeRawBufferPointer(host.bytes(at: offset, count: binding.elementCount * 4))
            IOStaging.fromArena(source, binding: binding, into: &bytes)
            storage[index] = bytes
            result.append(HostTensor(name: binding.name, elementType: binding.elementType,
                                     shape: binding.shape.map(Int.init), bytes: bytes))
        }
        return result
    }

    static func toArena(_ tensor: HostTensor, into destination: UnsafeMutableRawBufferPointer,
                        expected: [String] = []) throws {
        let count = tensor.elementCount
        tensor.bytes.withUnsafeBytes { source in
            switch tensor.elementType {
            case .float32, .int32:
                parallelCopy(destination, from: UnsafeRawBufferPointer(rebasing: source[0..<(count * 4)]))
            case .float16:
                forEachPiece(count: count, pieceSize: conversionPieceElements) { range in
                    for i in range {
                        destination.storeBytes(of: halfToFloat(source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)),
                                               toByteOffset: i * 4, as: Float.self)
                    }
                }
            case .bool:
                forEachPiece(count: count, pieceSize: conversionPieceElements) { range in
                    for i in range { destination.storeBytes(of: source[i] != 0 ? 1 : 0, toByteOffset: i * 4, as: Int32.self) }
                }
            case .int64:
                break
            }
        }
        if tensor.elementType == .int64 {
            try tensor.bytes.withUnsafeBytes { source in
                for i in 0..<count {
                    let value = source.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)
                    guard let narrow = Int32(exactly: value) else {
                        throw RuntimeError.inputMismatch(
                            reason: "input \"\(tensor.name)\"[\(i)] = \(value) does not fit int32, the device's integer type",
                            expected: expected)
                    }
                    destination.storeBytes(of: narrow, toByteOffset: i * 4, as: Int32.self)
                }
            }
        }
    }

    static func fromArena(_ source: UnsafeRawBufferPointer, binding: IOBinding) -> HostTensor {
        var bytes: [UInt8] = []
        fromArena(source, binding: binding, into: &bytes)
        return HostTensor(name: binding.name, elementType: binding.elementType, shape: binding.shape.map(Int.init), bytes: bytes)
    }

    /// Converts an output into `bytes`, reusing its storage when it has the right size.
    static func fromArena(_ source: UnsafeRawBufferPointer, binding: IOBinding, into bytes: inout [UInt8]) {
        let count = binding.elementCount
        let size = count * binding.elementType.byteSize
        if bytes.count != size {
            // Uninitialized: outputs can be hundreds of MiB, and zero-filling first doubles the writes.
            bytes = [UInt8](unsafeUninitializedCapacity: size) { _, initialized in initialized = size }
        }
        bytes.withUnsafeMutableBytes { out in
            switch binding.elementType {
            case .float32, .int32:
                parallelCopy(out, from: UnsafeRawBufferPointer(rebasing: source[0..<(count * 4)]))
            case .float16:
                forEachPiece(count: count, pieceSize: conversionPieceElements) { range in
                    for i in range {
                        out.storeBytes(of: floatToHalf(source.load(fromByteOffset: i * 4, as: Float.self)),
                                       toByteOffset: i * 2, as: UInt16.self)
                    }
                }
            case .int64:
                forEachPiece(count: count, pieceSize: conversionPieceElements) { range in
                    for i in range {
                        out.storeBytes(of: Int64(source.load(fromByteOffset: i * 4, as: Int32.self)), toByteOffset: i * 8,
                                       as: Int64.self)
                    }
                }
            case .bool:
                forEachPiece(count: count, pieceSize: conversionPieceElements) { range in
                    for i in range { out[i] = source.load(fromByteOffset: i * 4, as: Int32.self) != 0 ? 1 : 0 }
                }
            }
        }
    }
}
