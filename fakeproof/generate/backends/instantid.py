"""``instantid``: InstantID (Wang et al., 2024) on Stable Diffusion XL through diffusers.

Identity: the RAW antelopev2 ArcFace embedding (``glintr100.onnx``) of the source face. It enters
twice, as in InstantID: (1) through the IP-adapter (``ip-adapter.bin``: a perceiver resampler that
turns the 512-d embedding into 16 tokens, plus decoupled cross-attention in the UNet; loaded with
diffusers' ``load_ip_adapter``) and (2) as the IdentityNet ControlNet's cross-attention context,
with the 5 facial keypoints of the TARGET face drawn as the spatial condition. So the fake has the
source identity in the target's face layout; the rest comes from the prompt.

Models folder layout (``InstantX/InstantID`` + an SDXL base + insightface antelopev2)::

    MODELS/instantid/ControlNetModel/{config.json, diffusion_pytorch_model.safetensors}
    MODELS/instantid/ip-adapter.bin
    MODELS/antelopev2/glintr100.onnx
    MODELS/stable-diffusion-xl-base-1.0/  (diffusers folder: model_index.json, unet/, vae/, text_encoder(_2)/, ...)
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from ...engine.encoders.base import WeightFile
from ..faces import shared_finder
from .base import Backend, BackendError, arcface_recogniser
from .diffusion import generator, identity_embedding, to_uint8, torch_dtype

HF = "https://huggingface.co"
PROMPTS = (
    "photo of a person, natural light, sharp focus, detailed skin",
    "candid photo of a person outdoors, daylight, 50mm",
    "portrait photo of a person at an event, flash photography",
    "photo of a person indoors, soft window light",
)
NEGATIVE = "cartoon, painting, illustration, anime, drawing, deformed, blurry, lowres, watermark, text"
KPS_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255))
KPS_LIMBS = ((0, 2), (1, 2), (3, 2), (4, 2))  # eyes and mouth corners to the nose tip


def draw_keypoints(size: tuple[int, int], kps: np.ndarray, stick: int = 4, radius: int = 10) -> np.ndarray:
    """IdentityNet's condition image: coloured limbs from eyes/mouth corners to the nose, dots on top."""
    w, h = size
    img = np.zeros((h, w, 3), np.float32)
    for a, b in KPS_LIMBS:
        (x1, y1), (x2, y2) = kps[a], kps[b]
        length = float(np.hypot(x1 - x2, y1 - y2))
        angle = math.degrees(math.atan2(y1 - y2, x1 - x2))
        poly = cv2.ellipse2Poly((int((x1 + x2) / 2), int((y1 + y2) / 2)), (int(length / 2), stick), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(img, poly, KPS_COLOURS[a])
    img *= 0.6
    for i, (x, y) in enumerate(kps):
        cv2.circle(img, (int(x), int(y)), radius, KPS_COLOURS[i], -1)
    return img.clip(0, 255).astype(np.uint8)


def canvas_size(h: int, w: int, side: int, multiple: int) -> tuple[int, int]:
    """(width, height) with the longer side ``side``, both multiples of ``multiple``."""
    f = side / max(h, w)
    return max(multiple, int(w * f) // multiple * multiple), max(multiple, int(h * f) // multiple * multiple)


class InstantIDBackend(Backend):
    name = "instantid"
    description = "InstantID: SDXL + IdentityNet ControlNet + IP-adapter on the ArcFace embedding (diffusion)"
    uses_target = True

    def __init__(self, steps: int = 30, guidance: float = 5.0, ip_scale: float = 0.8, controlnet_scale: float = 0.8, side: int | None = None):
        super().__init__()
        self.steps = steps
        self.guidance = guidance
        self.ip_scale = ip_scale
        self.controlnet_scale = controlnet_scale
        self.side = side

    @classmethod
    def weight_files(cls, models_dir: Path) -> list[WeightFile]:
        md = Path(models_dir)
        lic = "InstantID: Apache-2.0 (weights for research use)"
        return [
            WeightFile("instantid/ControlNetModel (IdentityNet)", md / "instantid" / "ControlNetModel" / "diffusion_pytorch_model.safetensors", lic, f"{HF}/InstantX/InstantID (ControlNetModel/)"),
            WeightFile("instantid/ip-adapter.bin", md / "instantid" / "ip-adapter.bin", lic, f"{HF}/InstantX/InstantID (ip-adapter.bin)"),
            WeightFile(
                "antelopev2/glintr100.onnx",
                md / "antelopev2" / "glintr100.onnx",
                "insightface antelopev2: non-commercial research only",
                "antelopev2.zip from the insightface model zoo (unzip into MODELS/antelopev2/)",
            ),
            WeightFile(
                "stable-diffusion-xl-base-1.0",
                md / "stable-diffusion-xl-base-1.0" / "model_index.json",
                "CreativeML OpenRAIL++-M",
                f"{HF}/stabilityai/stable-diffusion-xl-base-1.0 (diffusers layout)",
            ),
        ]

    def load(self, models_dir: Path, device: str = "cpu") -> None:
        import torch
        from diffusers import ControlNetModel, StableDiffusionXLControlNetPipeline

        cn_w, ip_w, rec_w, base_w = self._require(models_dir)
        dtype = torch_dtype(device)
        controlnet = ControlNetModel.from_pretrained(str(cn_w.path.parent), torch_dtype=dtype, local_files_only=True)
        pipe = StableDiffusionXLControlNetPipeline.from_pretrained(str(base_w.path.parent), controlnet=controlnet, torch_dtype=dtype, local_files_only=True)
        pipe.load_ip_adapter(str(ip_w.path.parent), subfolder="", weight_name=ip_w.path.name, image_encoder_folder=None)
        pipe.set_ip_adapter_scale(self.ip_scale)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(device)
        self.device = device
        self.dtype = dtype
        self.recogniser = arcface_recogniser(rec_w.path, device)
        self._torch = torch
        self.loaded = True

    def _face_tokens(self, emb: np.ndarray):
        """(uncond, cond) resampled identity tokens for the ControlNet and the UNet's image embeds."""
        torch = self._torch
        unet = self.pipe.unet
        proj = unet.encoder_hid_proj.image_projection_layers[0]
        e = torch.from_numpy(emb).to(self.device, self.dtype).reshape(1, 1, -1)
        image_embeds = torch.cat([torch.zeros_like(e), e])  # (2, 1, 512): classifier-free guidance pair
        with torch.no_grad():
            tokens = proj(image_embeds)  # (2, 16, C)
        return image_embeds[:, None], tokens  # UNet takes (batch, num_images, seq, dim)

    def make(self, source_rgb: np.ndarray, target_rgb: np.ndarray | None, seed: int) -> np.ndarray:
        torch = self._torch
        if target_rgb is None:
            raise BackendError("instantid needs a target photo for the face keypoints")
        emb, _ = identity_embedding(self.recogniser, source_rgb, normalise=False)
        tf = shared_finder().main_face(target_rgb, "target photo")
        pipe = self.pipe
        rng = np.random.default_rng(seed)
        prompt = PROMPTS[int(rng.integers(len(PROMPTS)))]
        side = self.side or pipe.unet.config.sample_size * pipe.vae_scale_factor
        w, h = canvas_size(*target_rgb.shape[:2], side, pipe.vae_scale_factor * 8)
        f = np.array([w / target_rgb.shape[1], h / target_rgb.shape[0]], np.float32)
        from PIL import Image

        kps_img = Image.fromarray(draw_keypoints((w, h), tf.landmarks * f))
        dev = self.device
        with torch.no_grad():
            pe, npe, ppe, nppe = pipe.encode_prompt(prompt, device=dev, num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt=NEGATIVE)
            prompt_embeds = torch.cat([npe, pe])
            text_embeds = torch.cat([nppe, ppe])
            proj_dim = pipe.text_encoder_2.config.projection_dim
            time_ids = pipe._get_add_time_ids((h, w), (0, 0), (h, w), dtype=prompt_embeds.dtype, text_encoder_projection_dim=proj_dim).to(dev).repeat(2, 1)
            added = {"text_embeds": text_embeds, "time_ids": time_ids}
            image_embeds, face_tokens = self._face_tokens(emb)
            cond = pipe.prepare_image(kps_img, w, h, 1, 1, dev, self.dtype, do_classifier_free_guidance=True)
            pipe.scheduler.set_timesteps(self.steps, device=dev)
            latents = pipe.prepare_latents(1, pipe.unet.config.in_channels, h, w, prompt_embeds.dtype, dev, generator(seed))
            for t in pipe.scheduler.timesteps:
                x = pipe.scheduler.scale_model_input(torch.cat([latents] * 2), t)
                down, mid = pipe.controlnet(
                    x, t, encoder_hidden_states=face_tokens, controlnet_cond=cond, conditioning_scale=self.controlnet_scale, added_cond_kwargs=added, return_dict=False
                )
                noise = pipe.unet(
                    x,
                    t,
                    encoder_hidden_states=prompt_embeds,
                    added_cond_kwargs={**added, "image_embeds": [image_embeds]},
                    down_block_additional_residuals=down,
                    mid_block_additional_residual=mid,
                    return_dict=False,
                )[0]
                uncond, cond_noise = noise.chunk(2)
                noise = uncond + self.guidance * (cond_noise - uncond)
                latents = pipe.scheduler.step(noise, t, latents, return_dict=False)[0]
            vae = pipe.vae
            if vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
                vae.to(torch.float32)
            image = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
            out = pipe.image_processor.postprocess(image, output_type="np")[0]
        self.last_info = {"prompt": prompt, "steps": self.steps, "guidance": self.guidance, "ip_scale": self.ip_scale, "size": f"{w}x{h}", "jpeg_quality": 92}
        return to_uint8(out)
