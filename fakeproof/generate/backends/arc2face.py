"""``arc2face``: Arc2Face (Papantoniou et al., ECCV 2024) through diffusers.

A ``StableDiffusionPipeline`` whose UNet is Arc2Face's and whose CLIP text encoder is Arc2Face's
fine-tuned encoder. The identity is the L2-normalised ArcFace embedding of the source face (the
``arcface.onnx`` Arc2Face ships, i.e. antelopev2's glintr100), zero-padded to the text width and put
in place of the ``id`` token's input embedding in the prompt "photo of a id person"; the encoder's
output is the prompt embedding. The target photo is not used (prompt-only generation).

Models folder layout (as in the ``FoivosPar/Arc2Face`` repository + a Stable Diffusion 1.5 base)::

    MODELS/arc2face/arc2face/{config.json, diffusion_pytorch_model.safetensors}   # UNet
    MODELS/arc2face/encoder/{config.json, model.safetensors}                      # CLIP text encoder
    MODELS/arc2face/arcface.onnx
    MODELS/stable-diffusion-v1-5/  (diffusers folder: model_index.json, vae/, tokenizer/, scheduler/, ...)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...engine.encoders.base import WeightFile
from .base import Backend, BackendError, arcface_recogniser
from .diffusion import generator, identity_embedding, to_uint8, torch_dtype

PROMPT = "photo of a id person"
ID_TOKEN = "id"
HF = "https://huggingface.co"


class Arc2FaceBackend(Backend):
    name = "arc2face"
    description = "Arc2Face: SD 1.5 UNet conditioned on the ArcFace embedding (diffusion)"
    uses_target = False

    def __init__(self, steps: int = 25, guidance: float = 3.0):
        super().__init__()
        self.steps = steps
        self.guidance = guidance

    @classmethod
    def weight_files(cls, models_dir: Path) -> list[WeightFile]:
        a = Path(models_dir) / "arc2face"
        lic = "Arc2Face: CC BY-NC 4.0 (non-commercial)"
        src = f"{HF}/FoivosPar/Arc2Face"
        return [
            WeightFile("arc2face/arc2face (UNet)", a / "arc2face" / "diffusion_pytorch_model.safetensors", lic, f"{src} (folder arc2face/)"),
            WeightFile("arc2face/encoder (CLIP text encoder)", a / "encoder" / "model.safetensors", lic, f"{src} (folder encoder/)"),
            WeightFile("arc2face/arcface.onnx", a / "arcface.onnx", "insightface antelopev2: non-commercial research only", f"{src} (arcface.onnx)"),
            WeightFile(
                "stable-diffusion-v1-5 (base: vae, tokenizer, scheduler)",
                Path(models_dir) / "stable-diffusion-v1-5" / "model_index.json",
                "CreativeML OpenRAIL-M",
                f"{HF}/stable-diffusion-v1-5/stable-diffusion-v1-5 (diffusers layout)",
            ),
        ]

    def load(self, models_dir: Path, device: str = "cpu") -> None:
        import torch
        from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel
        from transformers import CLIPTextModel

        unet_w, enc_w, arcface_w, base_w = self._require(models_dir)
        dtype = torch_dtype(device)
        unet = UNet2DConditionModel.from_pretrained(str(unet_w.path.parent), torch_dtype=dtype, local_files_only=True)
        text_encoder = CLIPTextModel.from_pretrained(str(enc_w.path.parent), torch_dtype=dtype, local_files_only=True)
        pipe = StableDiffusionPipeline.from_pretrained(
            str(base_w.path.parent),
            unet=unet,
            text_encoder=text_encoder,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
            torch_dtype=dtype,
            local_files_only=True,
        )
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(device)
        self.device = device
        ids = pipe.tokenizer.encode(ID_TOKEN, add_special_tokens=False)
        if len(ids) != 1:
            raise BackendError(f"{base_w.path.parent}/tokenizer: '{ID_TOKEN}' is not a single token ({ids})")
        self.id_token = ids[0]
        width = text_encoder.config.hidden_size
        self.recogniser = arcface_recogniser(arcface_w.path, device)
        if width < 512:
            raise BackendError(f"{enc_w.path.parent}: text width {width} < 512, cannot hold an ArcFace embedding")
        self.loaded = True
        self._torch = torch

    def prompt_embeds(self, id_embedding: np.ndarray):
        """The prompt embedding of "photo of a id person" with the id token replaced by the face."""
        torch = self._torch
        pipe = self.pipe
        te = pipe.text_encoder
        ids = pipe.tokenizer(PROMPT, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids.to(te.device)
        where = ids == self.id_token
        if int(where.sum()) != 1:
            raise BackendError("the id token does not appear exactly once in the tokenised prompt")
        width = te.config.hidden_size
        emb = torch.from_numpy(id_embedding).to(te.device, te.dtype)
        emb = torch.nn.functional.pad(emb, (0, width - emb.shape[0]))
        token_layer = getattr(te, "text_model", te).embeddings.token_embedding

        def put_identity(_module, _inputs, output):
            output = output.clone()
            output[where] = emb
            return output

        handle = token_layer.register_forward_hook(put_identity)
        try:
            with torch.no_grad():
                return te(input_ids=ids)[0]
        finally:
            handle.remove()

    def make(self, source_rgb: np.ndarray, target_rgb: np.ndarray | None, seed: int) -> np.ndarray:
        emb, _ = identity_embedding(self.recogniser, source_rgb, normalise=True)
        pe = self.prompt_embeds(emb)
        with self._torch.no_grad():
            out = self.pipe(prompt_embeds=pe, num_inference_steps=self.steps, guidance_scale=self.guidance, generator=generator(seed), output_type="np")
        self.last_info = {"steps": self.steps, "guidance": self.guidance, "jpeg_quality": 92}
        return to_uint8(out.images[0])
