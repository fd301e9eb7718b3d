"""How sure an accuracy is: the Wilson score interval of a proportion.

An accuracy measured on n images is a proportion k/n; with n = 100 to 1,000
its uncertainty is a few per cent, as large as many differences between
conversion methods. :func:`wilson_interval` gives its confidence interval
(Wilson 1927, "Probable inference, the law of succession, and statistical
inference", JASA 22:209-212), which unlike the normal (Wald) interval stays
inside [0, 1] and keeps its coverage near 0 and 1 and for small n.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from ..errors import EvsimValueError

#: The confidence level of the intervals evsim reports.
CONFIDENCE = 0.95


def wilson_interval(correct: float, n: int, confidence: float = CONFIDENCE
                    ) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` of the proportion ``correct / n``.

    Parameters
    ----------
    correct:
        The successes (correctly classified images), 0 ≤ correct ≤ n. An
        accuracy times n may be given: it is rounded to the nearest count.
    n:
        The trials (images), a positive integer.
    confidence:
        The confidence level in (0, 1); 0.95 by default (z = 1.95996...).

    Returns
    -------
    The interval's ends as fractions in [0, 1]:
    ``(p + z²/2n ∓ z·sqrt(p(1 − p)/n + z²/4n²)) / (1 + z²/n)`` with p = correct/n.
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise EvsimValueError(f"n (the images counted) must be a positive integer, got {n!r}")
    if not 0 < confidence < 1:
        raise EvsimValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")
    n = int(n)
    k = round(float(correct))
    if not 0 <= k <= n:
        raise EvsimValueError(f"correct must be in [0, n = {n}], got {correct!r}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, z2 = k / n, z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    scale = 1 + z2 / n
    low, high = (centre - spread) / scale, (centre + spread) / scale
    # exact ends at k = 0 and k = n, where rounding would leave 1e-17 outside [0, 1]
    return (0.0 if k == 0 else max(0.0, low)), (1.0 if k == n else min(1.0, high))


def accuracy_interval(accuracy: float, n: int, confidence: float = CONFIDENCE
                      ) -> tuple[float, float]:
    """The Wilson interval of an ``accuracy`` (a fraction in [0, 1]) measured on ``n`` images."""
    if not 0 <= accuracy <= 1:
        raise EvsimValueError(f"accuracy must be a fraction in [0, 1], got {accuracy!r}")
    return wilson_interval(accuracy * n, n, confidence)


__all__ = ["CONFIDENCE", "wilson_interval", "accuracy_interval"]
