import XCTest
@testable import FlashMemRuntime

final class DeviceTests: XCTestCase {
    func testListsLavapipeAndPicksAUsableDevice() throws {
        let devices = try Device.list()
        XCTAssertFalse(devices.isEmpty)
        XCTAssertEqual(devices.map(\.index), Array(devices.indices))
        XCTAssertTrue(devices.contains { $0.name.contains("llvmpipe") && $0.type == .cpu && $0.usable },
                      "\(devices)")
        let device = try makeDevice()
        XCTAssertTrue(device.info.usable)
        // Discrete GPUs come first when present.
        if devices.contains(where: { $0.type == .discrete && $0.usable }) { XCTAssertEqual(device.info.type, .discrete) }
        let budget = device.memoryBudget()
        XCTAssertEqual(budget.isEmpty, !device.hasMemoryBudget)
    }

    func testExplicitIndexSelectsThatDevice() throws {
        let devices = try Device.list()
        let last = try XCTUnwrap(devices.last { $0.usable })
        let device = try makeDevice(options: DeviceOptions(deviceIndex: last.index))
        XCTAssertEqual(device.info, last)
    }

    func testBadIndexIsAClearError() throws {
        let count = try Device.list().count
        XCTAssertThrowsError(try makeDevice(options: DeviceOptions(deviceIndex: count + 5))) { error in
            guard case let RuntimeError.deviceIndexOutOfRange(index, available) = error else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(index, count + 5)
            XCTAssertEqual(available.count, count)
            XCTAssertTrue("\(error)".contains("device index \(count + 5) is out of range"))
            XCTAssertTrue("\(error)".contains("[0] "))
        }
        XCTAssertThrowsError(try makeDevice(options: DeviceOptions(deviceIndex: -1)))
    }

    func testLavapipeSharesOneQueue() throws {
        let device = try makeDevice()
        guard device.info.name.contains("llvmpipe") else { throw XCTSkip("not on lavapipe") }
        XCTAssertEqual(device.transferQueueKind, .sharedWithCompute)
        XCTAssertEqual(device.computeFamily, device.transferFamily)
    }
}
