"""Conditional generation from unconditional machinery: `guidance` (classifier-free and
classifier guidance, and their training losses), `flow` (class-conditional flow matching and
OT-CFM with label dropout, guided by the same `ClassifierFreeGuidance`) and `inpaint` (sampling
under an observation mask)."""

from .flow import conditional_fm_loss as conditional_fm_loss
from .flow import conditional_ot_cfm_loss as conditional_ot_cfm_loss
from .guidance import ClassifierFreeGuidance as ClassifierFreeGuidance
from .guidance import ClassifierGuidance as ClassifierGuidance
from .guidance import ConditionalField as ConditionalField
from .guidance import batch_conditional_loss as batch_conditional_loss
from .guidance import classifier_loss as classifier_loss
from .guidance import conditional_dsm_loss as conditional_dsm_loss
from .guidance import label_dropout as label_dropout
from .inpaint import ReplacementHook as ReplacementHook
from .inpaint import TweedieConditionalScore as TweedieConditionalScore
from .inpaint import half_mask as half_mask
from .inpaint import inpaint as inpaint
from .inpaint import random_mask as random_mask
from .inpaint import square_mask as square_mask
