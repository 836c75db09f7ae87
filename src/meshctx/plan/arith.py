"""Small integer helpers for hints: divisors and the nearest valid values."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from math import gcd, log2
from typing import TypeGuard


def is_integer(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool`` (``True`` is an ``int`` to Python, never a size to meshctx)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_size(value: object) -> TypeGuard[int]:
    """A usable parallel degree: an integer (not ``bool``) of at least 1."""
    return is_integer(value) and value >= 1


#: Primes below 100: trial division by these strips the small factors every real size has.
_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97)
#: Witnesses that make Miller–Rabin exact for every n < 3.3·10^24 (far beyond any size a request may hold).
_WITNESSES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in _WITNESSES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _rho(n: int) -> int:
    """A proper factor of the odd composite ``n`` (Pollard's rho, Brent's cycle finding): about n^¼ steps."""
    for c in range(1, n):
        y, r, q, g = 2, 1, 1, 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(128, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = gcd(q, n)
                k += 128
            r *= 2
        if g == n:
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = gcd(abs(x - ys), n)
        if g != n:
            return g
    raise ArithmeticError(f"no factor of {n} found")  # unreachable for composite n


@lru_cache(maxsize=1024)
def factorize(n: int) -> tuple[tuple[int, int], ...]:
    """``n`` (≥ 1) as ``((prime, exponent), …)``, ascending. Bounded work whatever ``n`` a client sends:
    trial division by the primes below 100, then Miller–Rabin and Pollard's rho (≈ n^¼ steps), never
    trial division up to √n."""
    if n < 1:
        raise ValueError(f"factorize needs n ≥ 1, got {n}")
    found: dict[int, int] = {}
    for p in _SMALL_PRIMES:
        while n % p == 0:
            found[p] = found.get(p, 0) + 1
            n //= p
    stack = [n] if n > 1 else []
    while stack:
        m = stack.pop()
        if _is_prime(m):
            found[m] = found.get(m, 0) + 1
        else:
            f = _rho(m)
            stack += [f, m // f]
    return tuple(sorted(found.items()))


#: More divisors than any number below 2^31 has (1,600); lists are cut here so no caller can grow them.
MAX_DIVISORS = 2048


def divisors(n: int) -> list[int]:
    """All divisors of ``n`` (n ≥ 1), ascending (at most ``MAX_DIVISORS``, the smallest), from its factorization.
    Not memoized (the factorization is, a few pairs a number): a number below 2^31 may have 1,600 divisors,
    and a memo of such lists grew the service by megabytes."""
    out = [1]
    for prime, exponent in factorize(n):
        out = [d * prime**k for d in out for k in range(exponent + 1)]
        if len(out) > MAX_DIVISORS:
            out = sorted(out)[:MAX_DIVISORS]
    return sorted(out)


def nearest(candidates: list[int], target: int, count: int = 3) -> list[int]:
    """Up to ``count`` candidates closest to ``target`` on a log scale, ascending."""
    if not candidates:
        return []
    ranked = sorted(candidates, key=lambda c: (abs(log2(c) - log2(max(target, 1))), c))
    return sorted(ranked[:count])


def nearest_multiples(n: int, base: int) -> list[int]:
    """The multiples of ``base`` just below and just above ``n`` (below omitted when it is 0)."""
    below = (n // base) * base
    above = below + base if below != n else n
    return [m for m in dict.fromkeys((below, above)) if m > 0]


def join_or(values: Sequence[object]) -> str:
    """``[2, 4, 8]`` → ``"2, 4 or 8"``."""
    words = [str(v) for v in values]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]
