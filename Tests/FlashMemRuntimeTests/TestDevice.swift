import XCTest
@testable import FlashMemRuntime

/// One Vulkan device (lavapipe in CI) for every test class of the process: making one costs an instance, a
/// logical device and queues, and sessions may share it as long as they run one at a time, as XCTest does.
enum TestDevice {
    nonisolated(unsafe) private static var cached: Device?

    static func shared() throws -> Device {
        if let cached { return cached }
        let device = try Device()
        cached = device
        return device
    }
}

extension XCTestCase {
    /// The shared device; with `FLASHMEM_VALIDATION=1`, the test also fails on any validation-layer error reported
    /// while it runs.
    func device() throws -> Device {
        failOnValidationErrors()
        return try TestDevice.shared()
    }

    /// A device of the test's own, under the same validation check as `device()`.
    func makeDevice(options: DeviceOptions = DeviceOptions()) throws -> Device {
        failOnValidationErrors()
        return try Device(options: options)
    }

    /// With validation on (`VulkanValidation.isRequested`): fails this test, at its end, if the Khronos layer
    /// reported errors (every message also went to stderr as it came). Once per test, however often it is called.
    func failOnValidationErrors(file: StaticString = #filePath, line: UInt = #line) {
        guard VulkanValidation.isRequested, ValidationWatch.watched.insert(ObjectIdentifier(self)).inserted else { return }
        let before = VulkanValidation.errorCount
        addTeardownBlock {
            let new = VulkanValidation.errorCount - before
            if new > 0 {
                let shown = VulkanValidation.errors().suffix(min(new, 3)).joined(separator: "\n")
                XCTFail("\(new) Vulkan validation error(s) during this test, e.g.:\n\(shown)", file: file, line: line)
            }
        }
    }
}

private enum ValidationWatch {
    /// Tests already watched (XCTest makes one XCTestCase instance per test method).
    nonisolated(unsafe) static var watched = Set<ObjectIdentifier>()
}
