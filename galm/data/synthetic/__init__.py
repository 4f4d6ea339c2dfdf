"""Built-in synthetic attribute domains: seeded RGB images whose attributes come from latent factors.

Each domain (``syn1``, ``syn2``, ...) has classes with a binary signature over latent factors:
a pool of *shared* factors used by every domain plus *private* factors of its own. Every factor
is drawn with a visual cue (fine texture, global shape, colour layout, counts, position/size).
``shared_cues`` says how a shared factor looks across domains: ``"rotate"`` (default) gives it a
different cue type in each domain, so nothing visible links it across domains; ``"keep"`` keeps its
cue type (texture stays texture) with a different variant and hue per domain; ``"same"`` draws it
exactly as the first domain does (same cue, variant and colour), the paper's premise that an
attribute such as "striped" looks alike on animals and on objects. The domains still differ in
background, classes, private factors and which factors each attribute combines. Attributes derive
from one factor or from two (AND / OR / XOR). Cues differ in what a network must see (1-2 px texture
needs early high-resolution features; shape needs a large receptive field), so architecture choices
matter.
The ground truth goes into each domain's ``metadata`` for later analyses.

Modules: :mod:`~galm.data.synthetic.config` (the settings), :mod:`~galm.data.synthetic.plan`
(factors, cues, attributes, background, seeds), :mod:`~galm.data.synthetic.labels` (class
signatures, labels, ground truth), :mod:`~galm.data.synthetic.render` (drawing the images) and
:mod:`~galm.data.synthetic.generate` (putting them together into domains).
"""

from galm.config.schema import SHARED_CUE_MODES, SyntheticConfig
from galm.data.synthetic.generate import (
    generate_domain,
    generate_domains,
    shared_factor_pairs,
)
from galm.data.synthetic.plan import (
    CUES,
    RULES,
    AttributeSpec,
    DomainPlan,
    FactorSpec,
    apply_rules,
    plan_domain,
)
from galm.data.synthetic.render import render_images

__all__ = [
    "CUES",
    "RULES",
    "SHARED_CUE_MODES",
    "AttributeSpec",
    "DomainPlan",
    "FactorSpec",
    "SyntheticConfig",
    "apply_rules",
    "generate_domain",
    "generate_domains",
    "plan_domain",
    "render_images",
    "shared_factor_pairs",
]
