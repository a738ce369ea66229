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
    func device() throws -> Device { try TestDevice.shared() }
}
