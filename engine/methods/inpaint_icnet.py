"""inpaint+icnet: ICNet whose two students start from the inpainting-pretrained encoder.

Stage 1 is the inpainting pretraining (engine.inpainting, or ``--init`` with a saved encoder file).
Both ICNet students then load that encoder; their decoders and heads keep their own, different random
initialisations, so the pair still starts different — the disagreement ICNet feeds on — while both
see the imagery through features learnt from all of it. Both EMA teachers restart as copies of their
students, and a student that ICNet re-seeds between rounds gets the pretrained encoder again.
Everything else is ICNet as configured (engine/methods/icnet.py); the SSIM loss is not added here
(with the sparse point or scribble labels ICNet targets, it is inactive anyway).
"""

from __future__ import annotations

from engine.methods.icnet import ICNet, Student
from engine.pretrain import EncoderFile, load_pretrained


class InpaintICNet(ICNet):
    name = "inpaint+icnet"

    def __init__(self, cfg, data, device):
        self.enc: EncoderFile | None = None  # set by initialise(); read by _new_student()
        super().__init__(cfg, data, device)

    def initialise(self, enc: EncoderFile) -> None:
        self.enc = enc
        for student, teacher in zip(self.students, self.teachers, strict=True):
            load_pretrained(student.net, enc, decoder=False)
            teacher.reset(student)

    def _new_student(self, seed: int) -> Student:
        student = super()._new_student(seed)
        if self.enc is not None:
            load_pretrained(student.net, self.enc, decoder=False)
        return student
