"""The memmove the extension links s2n-tls against (``--wrap=memmove``).

glibc's ``rep movsb`` copy is ~25x slower on AMD Zen at some alignments, so large
copies at those alignments go in pieces (see ``build_s2n.py``). Whatever the path,
the result must be exactly memmove's / memcpy's.
"""

import pytest

from s2npy import ffi, lib

SIZES = [0, 1, 100, 2048, 2049, 5000, 16384 + 29, 40000]
SHIFTS = [-70, -64, -15, -11, -1, 1, 5, 11, 13, 15, 16, 63, 64, 65]


def reference_move(memory: bytearray, to: int, source: int, size: int) -> bytearray:
    expected = bytearray(memory)
    expected[to:to + size] = memory[source:source + size]
    return expected


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("shift", SHIFTS)
def test_memmove_overlapping_and_apart_at_every_kind_of_distance(size, shift):
    """Overlapping moves (|shift| < size) must never be split into pieces that overwrite their source."""
    base = 200
    memory = bytearray((i * 7 + i // 251) % 256 for i in range(size + 2 * base + 100))
    expected = reference_move(memory, base + shift, base, size)
    buffer = ffi.from_buffer(memory)
    result = lib.__wrap_memmove(buffer + base + shift, buffer + base, size)
    assert result == buffer + base + shift
    assert memory == expected


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("shift", [1, 5, 11, 13, 15, 16, 59, 64])
def test_memmove_between_separate_buffers(size, shift):
    """Apart and at a slow distance, a large move goes in pieces: the bytes must not change."""
    source = bytes((i * 13) % 256 for i in range(size))
    target = bytearray(size + 128)
    source_view, target_view = ffi.from_buffer(source), ffi.from_buffer(target)
    # Place the destination `shift` bytes ahead of the source modulo 64.
    offset = (int(ffi.cast("uintptr_t", source_view)) + shift - int(ffi.cast("uintptr_t", target_view))) % 64
    result = lib.__wrap_memmove(target_view + offset, source_view, size)
    assert result == target_view + offset
    assert bytes(target[offset:offset + size]) == source
    assert not any(target[:offset]) and not any(target[offset + size:])
