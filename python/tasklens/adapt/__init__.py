"""Unsupervised domain adaptation on images (needs torch): CDLM (Hou et al., cross-domain latent
modulation), DANN (Ganin et al., JMLR 2016), and the source-only / target-only bounds.

All four share one estimator API::

    m = CDLM(seed=0, epochs=10)
    m.fit(source_x, source_y, target_x)      # TargetOnly: fit(target_x, target_y)
    m.predict(x); m.predict_proba(x); m.score(x, y); m.transform(x)
    m.translate(target_x)                    # CDLM only
    m.save(path); CDLM.load(path)

Images are (N, C, H, W), uint8 or float in [0, 1], C in {1, 3}, square with a side divisible by 4.
"""

from .cdlm import CDLM
from .dann import DANN, SourceOnly, TargetOnly
from .nets import grad_reverse

__all__ = ["CDLM", "DANN", "SourceOnly", "TargetOnly", "grad_reverse"]
