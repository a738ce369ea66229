import CVulkan

/// Command buffers, recorded once per session and replayed by every run.
extension Session {
    func recordCommands(_ residency: SessionResidency) throws {
        let bundle = self.bundle.bundle
        let (arena, computePool) = (residency.arena, residency.computePool)
        try computePool.record(residency.uploadCommand) { cb in
            if let queryPool { vkCmdResetQueryPool(cb, queryPool.handle, 0, queryPool.count) }
            io.recordUpload(cb, arena: arena, tensors: bundle.tensors)
        }
        try computePool.record(residency.readbackCommand) { cb in
            io.recordReadback(cb, arena: arena, tensors: bundle.tensors)
        }
        var programs = [residency.warm]
        if let first = residency.first, first !== residency.warm { programs.append(first) }
        for program in programs {
            for (batch, cb) in zip(program.batches, program.commands) {
                try computePool.record(cb) { cb in recordSteps(cb, batch.steps, residency) }
            }
        }
    }

    /// Dispatches of `steps`, with a compute→compute memory barrier before every step but the first of the
    /// program (the barrier also orders a batch after the previous batch: both are on the compute queue).
    /// A predicated step's dispatch is wrapped in conditional rendering over its condition in the arena; in a
    /// bundle with predicated steps the barriers also make earlier writes (kernels, and the input upload
    /// before step 0) visible to the conditional-rendering read.
    private func recordSteps(_ cb: VkCommandBuffer, _ steps: Range<Int>, _ residency: SessionResidency) {
        let bundle = self.bundle.bundle
        let predicated = bundle.hasPredicatedSteps
        let conditionStage = predicated ? VK_PIPELINE_STAGE_CONDITIONAL_RENDERING_BIT_EXT.rawValue : 0
        let conditionAccess = predicated ? VK_ACCESS_CONDITIONAL_RENDERING_READ_BIT_EXT.rawValue : 0
        var bound: Int? = nil
        for k in steps {
            let step = bundle.program[k]
            let kernel = bundle.kernels[Int(step.kernel)]
            let pipeline = pipelines[Int(step.kernel)]
            if k > 0 {
                memoryBarrier(cb, srcAccess: VK_ACCESS_SHADER_WRITE_BIT.rawValue,
                              dstAccess: VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
                                  | conditionAccess,
                              srcStage: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue,
                              dstStage: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | conditionStage)
            } else if predicated {
                // A condition may be a model input, written by the upload's copy.
                memoryBarrier(cb, srcAccess: VK_ACCESS_TRANSFER_WRITE_BIT.rawValue, dstAccess: conditionAccess,
                              srcStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue, dstStage: conditionStage)
            }
            if let queryPool {
                vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, queryPool.handle, UInt32(2 * k))
            }
            if bound != Int(step.kernel) {
                vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.handle)
                bound = Int(step.kernel)
            }
            var set: VkDescriptorSet? = residency.stepSets[k]
            vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.layout.handle, 0, 1, &set, 0, nil)
            if kernel.pushConstantSize > 0 {
                var data = step.pushConstants
                data.append(contentsOf: repeatElement(0, count: Int(kernel.pushConstantSize) - data.count))
                vkCmdPushConstants(cb, pipeline.layout.handle, VK_SHADER_STAGE_COMPUTE_BIT.rawValue, 0,
                                   kernel.pushConstantSize, data)
            }
            if let predicate = step.predicate, let conditional = device.conditionalRendering {
                conditional.begin(cb, buffer: residency.arena, offset: bundle.tensors[Int(predicate.tensor)].offset,
                                  inverted: predicate.sense == .zero)
                vkCmdDispatch(cb, step.groups[0], step.groups[1], step.groups[2])
                conditional.end(cb)
            } else {
                vkCmdDispatch(cb, step.groups[0], step.groups[1], step.groups[2])
            }
            if let queryPool {
                vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queryPool.handle, UInt32(2 * k + 1))
            }
        }
    }

    /// The resident constants (`Tensor.constant`) from the data section in a staging buffer, and a command buffer
    /// that copies them into the arena: recorded once per residency, submitted by `submit` after every clobber.
    func makeConstantUpload(arena: VK.Buffer) throws -> ConstantUpload {
        let bundle = self.bundle.bundle
        let indices = bundle.tensors.indices.filter { (bundle.tensors[$0].constant?.size ?? 0) > 0 }
        let constants = indices.map { bundle.tensors[$0] }
        guard !constants.isEmpty else { return ConstantUpload(staging: nil, pool: nil, command: nil) }
        var offsets: [UInt64] = []
        var total: UInt64 = 0
        for tensor in constants {
            offsets.append(total)
            total = alignUp(total + tensor.constant!.size, 16)
        }
        let staging = try HostBuffer(device: device, size: total, usage: VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue,
                                     label: "resident constants staging")
        // Checked against the bundle's constant checksums (1.3) before any kernel reads them, as chunks are.
        let sums = options.verifyChunks ? self.bundle.constantChecksums : nil
        for (index, offset) in zip(indices, offsets) {
            let tensor = bundle.tensors[index]
            let source = self.bundle.bytes(tensor.constant!)
            if let sums {
                let found = Checksum.fm64(source)
                guard found == sums[index] else {
                    throw RuntimeError.constantChecksum(path: self.bundle.path, tensor: index, name: tensor.name,
                                                        expected: sums[index], found: found)
                }
            }
            staging.bytes(at: offset, count: source.count).copyMemory(from: source)
        }
        let pool = try VK.CommandPool(device: device.vk, family: device.computeFamily)
        let cb = try pool.allocate(1)[0]
        try pool.record(cb) { cb in
            for (tensor, offset) in zip(constants, offsets) {
                var region = VkBufferCopy(srcOffset: offset, dstOffset: tensor.offset, size: tensor.constant!.size)
                vkCmdCopyBuffer(cb, staging.buffer.handle, arena.handle, 1, &region)
            }
            memoryBarrier(cb, srcAccess: VK_ACCESS_TRANSFER_WRITE_BIT.rawValue,
                          dstAccess: VK_ACCESS_SHADER_READ_BIT.rawValue,
                          srcStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
                          dstStage: VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue)
        }
        return ConstantUpload(staging: staging, pool: pool, command: cb)
    }

    /// Copies the resident constants into the arena and waits for the copy.
    func submit(_ upload: ConstantUpload) throws {
        guard let cb = upload.command else { return }
        // Waits on the session's own timeline, not vkQueueWaitIdle: the queue may be busy with other sessions' work.
        let signal = computedValue + 1
        try device.submit([VK.Submission(commandBuffers: [cb], signals: [(computedSemaphore, signal)])],
                          to: device.computeQueue)
        computedValue = signal
        try computedSemaphore.wait(for: signal, timeout: timeoutNanoseconds)
    }
}

/// A residency's resident-constant upload (`Session.makeConstantUpload`): host staging (not charged to the budget)
/// and its recorded copy, kept as long as the arena (the driver may still hold a submission after its signal; see
/// `Device.drain`). All nil when the bundle has no resident constants.
final class ConstantUpload {
    let staging: HostBuffer?
    let pool: VK.CommandPool?
    let command: VkCommandBuffer?

    init(staging: HostBuffer?, pool: VK.CommandPool?, command: VkCommandBuffer?) {
        self.staging = staging
        self.pool = pool
        self.command = command
    }
}
