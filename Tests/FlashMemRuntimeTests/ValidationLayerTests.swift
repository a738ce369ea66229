import CVulkan
import XCTest
@testable import FlashMemRuntime

/// The validation opt-in itself (`FLASHMEM_VALIDATION=1`, `make sanitize`): the layer is on and its messenger counts
/// errors, so the zero that every other test checks means something.
final class ValidationLayerTests: XCTestCase {
    func testTheMessengerCountsAnError() throws {
        try XCTSkipUnless(VulkanValidation.isRequested, "runs with FLASHMEM_VALIDATION=1 (make sanitize)")
        let device = try TestDevice.shared()  // not device(): this test makes an error on purpose
        let before = VulkanValidation.errorCount
        // A buffer without usage flags: invalid (VUID-VkBufferCreateInfo-usage-requiredbitmask), harmless to lavapipe.
        _ = try VK.Buffer(device: device.vk, size: 256, usage: 0, label: "invalid on purpose")
        XCTAssertGreaterThan(VulkanValidation.errorCount, before, "the layer reported nothing")
        XCTAssertTrue(VulkanValidation.errors().contains { $0.contains("VkBufferCreateInfo-usage") },
                      "\(VulkanValidation.errors())")
    }

    /// Synchronization validation is on: two copies into the same bytes with no barrier between them are a
    /// write-after-write hazard, reported when the command buffer is recorded.
    func testSynchronizationValidationIsOn() throws {
        try XCTSkipUnless(VulkanValidation.isRequested, "runs with FLASHMEM_VALIDATION=1 (make sanitize)")
        let device = try TestDevice.shared()  // not device(): this test makes an error on purpose
        let usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue
        let buffers = try (0..<2).map { i -> VK.Buffer in
            let buffer = try VK.Buffer(device: device.vk, size: 256, usage: usage, label: "hazard \(i)")
            let requirements = buffer.requirements
            try buffer.bind(device.allocate(size: requirements.size, typeBits: requirements.memoryTypeBits, required: 0,
                                            label: "hazard \(i)"))
            return buffer
        }
        let pool = try VK.CommandPool(device: device.vk, family: device.computeFamily)
        let before = VulkanValidation.errorCount
        try pool.record(try pool.allocate(1)[0]) { cb in
            var region = VkBufferCopy(srcOffset: 0, dstOffset: 0, size: 256)
            vkCmdCopyBuffer(cb, buffers[0].handle, buffers[1].handle, 1, &region)
            vkCmdCopyBuffer(cb, buffers[0].handle, buffers[1].handle, 1, &region)  // no barrier: a hazard
        }
        XCTAssertGreaterThan(VulkanValidation.errorCount, before, "synchronization validation reported nothing")
        XCTAssertTrue(VulkanValidation.errors().contains { $0.contains("SYNC-HAZARD-WRITE-AFTER-WRITE") },
                      "\(VulkanValidation.errors())")
    }
}
