"""A minidump built to be slow and large to walk (issue 17, bounded work per event).

The same layout as `hostile_dump` in relay-processing/tests/native_bounds.rs: a Linux x86-64
crash (SIGSEGV on thread 1) whose `threads` threads all share one context and one stack memory
region of `stack_bytes`, every word of which is a plausible return address into the dump's
only module. That module has no debug file, so stack scanning accepts every word: unbounded,
each thread walks to `stack_bytes / 8` frames, while the file grows by 48 bytes per thread.
"""

from __future__ import annotations

import struct

MODULE_BASE = 0x5555_0000_0000
MODULE_SIZE = 0x10_0000
STACK_BASE = 0x7FFD_0000_0000
CONTEXT_AMD64_SIZE = 1232


def hostile_dump(threads: int, stack_bytes: int) -> bytes:
    streams = 4
    name = "/hostile/libslow.so".encode("utf-16-le")
    system_rva = 32 + 12 * streams
    string_rva = system_rva + 56
    name_rva = string_rva + 4
    modules_rva = name_rva + 4 + len(name)
    exception_rva = modules_rva + 4 + 108
    threads_rva = exception_rva + 168
    context_rva = threads_rva + 4 + 48 * threads
    stack_rva = context_rva + CONTEXT_AMD64_SIZE

    out = bytearray()
    # header: signature, version, stream count, directory rva, checksum, time, flags
    out += struct.pack("<IIIIIIQ", 0x504D444D, 0xA793, streams, 32, 0, 0, 0)
    for ty, size, rva in [(7, 56, system_rva), (4, 4 + 108, modules_rva),
                          (6, 168, exception_rva), (3, 4 + 48 * threads, threads_rva)]:
        out += struct.pack("<III", ty, size, rva)
    # MINIDUMP_SYSTEM_INFO: AMD64, one CPU, Linux, empty CSD version
    out += struct.pack("<HHHBBIIIIIHH", 9, 6, 0, 1, 1, 5, 15, 0, 0x8201, string_rva, 0, 0)
    out += bytes(24)
    out += struct.pack("<I", 0)  # the empty CSD string
    out += struct.pack("<I", len(name)) + name
    assert len(out) == modules_rva
    # MINIDUMP_MODULE_LIST: one module without debug identifiers
    out += struct.pack("<IQIIII", 1, MODULE_BASE, MODULE_SIZE, 0, 0, name_rva)
    out += bytes(52 + 8 + 8 + 16)
    # MINIDUMP_EXCEPTION_STREAM: SIGSEGV on thread 1
    out += struct.pack("<IIIIQQII", 1, 0, 11, 0, 0, MODULE_BASE + 0x500, 0, 0)
    out += bytes(120)
    out += struct.pack("<II", CONTEXT_AMD64_SIZE, context_rva)
    assert len(out) == threads_rva
    # MINIDUMP_THREAD_LIST: every thread points at the same context and stack
    out += struct.pack("<I", threads)
    for tid in range(1, threads + 1):
        out += struct.pack("<I12xQQIIII", tid, 0, STACK_BASE, stack_bytes, stack_rva,
                           CONTEXT_AMD64_SIZE, context_rva)
    # CONTEXT_AMD64: control and integer registers; rsp at the stack, rip in the module, rbp 0
    context = bytearray(CONTEXT_AMD64_SIZE)
    struct.pack_into("<I", context, 48, 0x0010000F)
    struct.pack_into("<Q", context, 152, STACK_BASE)
    struct.pack_into("<Q", context, 248, MODULE_BASE + 0x500)
    out += context
    words = stack_bytes // 8
    out += struct.pack(f"<{words}Q",
                       *(MODULE_BASE + 0x1000 + (i % 0x1000) * 16 for i in range(words)))
    return bytes(out)
