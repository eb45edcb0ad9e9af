"""The benchmark harness (as CompressAI's ``compressai/utils/bench``): what the scripts in
``benchmarks/`` and their tests share, importable wherever sspcodec is installed.

The scripts in ``benchmarks/`` parse arguments and print; the pieces they have in common live
here, one job per module:

- :mod:`.encoders`: every JPEG codec compared, behind one interface (peers and ours);
- :mod:`.paths`: where the shared data lives (found when asked, never at import);
- :mod:`.testsets`: held-out OSIE/EyeCrowd images at half size with human maps, Kodak;
- :mod:`.judges`: calibrated models of human vision (ColorVideoVDP, foveated FovVideoVDP) at a
  viewing geometry;
- :mod:`.measures`: the quality figures of one encoding (the judges, SSIMULACRA2, butteraugli,
  PSNR and the fixation-weighted PSNRs as diagnostics);
- :mod:`.budgets`: every codec at equal bytes: the line-up, budget, sweep and strength runs;
- :mod:`.tables`, :mod:`.plots`: the codec benchmarks' markdown tables and PNGs;
- :mod:`.timing`, :mod:`.models`: timing and random-weight models for the cost benchmarks;
- :mod:`.studies`, :mod:`.study_scores`: training studies as `sspnet train`/`eval` runs, and
  their scores read back;
- :mod:`.outputblur`: the output blur chosen on validation maps;
- :mod:`.fuzz_inputs`, :mod:`.fuzz_cases`, :mod:`.fuzz_runner`: the fuzz harness;
- :mod:`.batchchecks`: what a batch run left behind, and its processes.

Nothing is imported here, so ``import sspcodec.bench`` costs no more than sspcodec itself.
"""
