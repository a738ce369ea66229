import CVulkan

extension Device {
    /// Everything about `bundle` this device cannot do, one line each ("push constants: the bundle needs
    /// 256 bytes, the device allows 128 bytes"); empty when it can run it. Checked before any Vulkan object is created.
    /// Covers the bundle's declared `DeviceRequirements` and what the runtime derives itself from the
    /// tables (image extents and formats, binding counts and offsets, dispatch sizes), so a bundle with
    /// understated requirements still fails here with a message instead of in the driver.
    func unmetRequirements(of bundle: FMBundle) -> [String] {
        let limits = self.limits
        // Declared requirements (the meta section), compared by the format's own rule.
        var unmet = bundle.meta.requirements.unmet(by: deviceLimits)

        // Derived from the tables, in the same wording.
        func need<T: BinaryInteger>(_ what: String, _ needed: T, _ offered: T, _ unit: String = "") {
            if needed > offered { unmet.append("\(what): the bundle needs \(needed)\(unit), the device allows \(offered)\(unit)") }
        }
        need("weight image extent", bundle.images.map { max($0.width, $0.height) }.max() ?? 0,
             limits.maxImageDimension2D, " texels")
        need("weight image layers", bundle.images.map(\.layers).max() ?? 0, limits.maxImageArrayLayers)
        need("kernel push constants", bundle.kernels.map(\.pushConstantSize).max() ?? 0, limits.maxPushConstantsSize, " bytes")
        need("storage buffers per kernel",
             UInt32(bundle.kernels.map { $0.bindings.filter { $0 == .storageBuffer }.count }.max() ?? 0),
             limits.maxPerStageDescriptorStorageBuffers)
        need("storage images per kernel",
             UInt32(bundle.kernels.map { $0.bindings.filter { $0 == .storageImage }.count }.max() ?? 0),
             limits.maxPerStageDescriptorStorageImages)
        let invocations = bundle.kernels.map { $0.workgroupSize.reduce(UInt64(1)) { $0 * UInt64($1) } }.max() ?? 0
        need("kernel workgroup invocations", invocations, UInt64(limits.maxComputeWorkGroupInvocations))
        let maxGroups = array(fromCTuple: limits.maxComputeWorkGroupCount, of: UInt32.self, count: 3)
        for axis in 0..<3 {
            let most = bundle.program.map { $0.groups.count == 3 ? $0.groups[axis] : 0 }.max() ?? 0
            need("workgroups along \(["x", "y", "z"][axis])", most, maxGroups[axis])
        }
        let alignment = limits.minStorageBufferOffsetAlignment
        var boundTensors = Set<UInt32>()
        for step in bundle.program {
            for case let .tensor(t) in step.bindings { boundTensors.insert(t) }
        }
        for t in boundTensors.sorted() where Int(t) < bundle.tensors.count {
            let tensor = bundle.tensors[Int(t)]
            if tensor.offset % alignment != 0 {
                unmet.append("storage buffer offset alignment: tensor \(tensor.name) is at arena offset "
                             + "\(tensor.offset), the device needs multiples of \(alignment)")
            }
            if tensor.size > UInt64(limits.maxStorageBufferRange) {
                unmet.append("storage buffer range: tensor \(tensor.name) binds \(tensor.size) bytes, the device allows "
                             + "\(limits.maxStorageBufferRange) bytes")
            }
        }
        if bundle.hasPredicatedSteps, !hasConditionalRendering {
            let count = bundle.program.filter { $0.predicate != nil }.count
            unmet.append("predicated steps: \(count) steps run only when an If condition computed at run time holds, "
                         + "which needs \(VK.ConditionalRendering.extensionName); the device "
                         + (physical.supportsConditionalRendering ? "was opened without it" : "does not offer it"))
        }
        if bundle.meta.requirements.features.contains(.cooperativeMatrixNV), !hasCooperativeMatrix {
            unmet.append("tensor cores: the bundle's cooperative-matrix kernels need \(VK.CooperativeMatrix.extensionName); "
                         + (physical.cooperativeMatrixUnavailableReason ?? "the device was opened without it")
                         + " (compile with --tensor-cores off for this device)")
        }
        for format in Set(bundle.images.map(\.format)).sorted(by: { $0.rawValue < $1.rawValue })
        where !supportsWeightFormat(format.vkFormat) {
            unmet.append("weight image format \(format): the device has no storage-image and transfer-destination "
                         + "support for it with optimal tiling")
        }
        return unmet
    }

    /// The device's limits in the format's terms (`DeviceRequirements.unmet(by:)`).
    var deviceLimits: DeviceLimits {
        DeviceLimits(pushConstantBytes: limits.maxPushConstantsSize,
                     storageBufferRange: UInt64(limits.maxStorageBufferRange),
                     imageDimension2D: limits.maxImageDimension2D, imageArrayLayers: limits.maxImageArrayLayers,
                     workgroupInvocations: limits.maxComputeWorkGroupInvocations,
                     sharedMemoryBytes: limits.maxComputeSharedMemorySize,
                     features: hasCooperativeMatrix ? .cooperativeMatrixNV : [])
    }

    /// Throws `RuntimeError.requirementsUnmet` listing every unmet requirement of `loaded`.
    func checkRequirements(of loaded: LoadedBundle) throws {
        let unmet = unmetRequirements(of: loaded.bundle)
        guard unmet.isEmpty else {
            throw RuntimeError.requirementsUnmet(device: info.name, bundle: loaded.path, unmet: unmet)
        }
    }
}

extension ImageFormat {
    var vkFormat: VkFormat {
        switch self {
        case .rgba32f: VK_FORMAT_R32G32B32A32_SFLOAT
        case .rgba16f: VK_FORMAT_R16G16B16A16_SFLOAT
        case .half8: VK_FORMAT_R32G32B32A32_UINT
        }
    }
}
