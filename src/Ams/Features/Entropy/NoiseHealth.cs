namespace Ams.Features.Entropy;

/// <summary>
/// NIST SP 800-90B section 4.4 continuous health tests applied to a whole blob of bytes from random.org before use.
/// </summary>
public static class NoiseHealth
{
    /// <summary>
    /// Full entropy. What we test is random.org's delivered output, which is post-processed to be indistinguishable
    /// from uniform bytes, so 8 bits per byte is the honest claim for these samples (not for the raw atmospheric noise).
    /// A lower claim would raise the cutoffs and let more broken output through while barely helping genuine output:
    /// false alarms on uniform bytes are dominated by the RCT (~2.4e-4 per 4 KiB blob, vs ~1e-5 for the APT), and its
    /// cutoff stays 4 for any claim from 6.67 up.
    /// </summary>
    public const double ClaimedMinEntropyPerByte = 8.0;

    /// <summary>alpha = 2^-20, the loosest false-positive rate the standard recommends (2^-20 to 2^-40).</summary>
    public const int FalsePositiveExponent = 20;

    /// <summary>W for non-binary samples (SP 800-90B section 4.4.2).</summary>
    public const int AdaptiveProportionWindowSize = 512;

    /// <summary>C = 1 + ceil(20 / H). Per-sample false alarm rate is 2^-H(C-1) = 2^-24 for H = 8.</summary>
    public static int RepetitionCountCutoff { get; } =
        1 + (int)Math.Ceiling(FalsePositiveExponent / ClaimedMinEntropyPerByte);

    /// <summary>C = 1 + CRITBINOM(W, 2^-H, 1 - alpha), which is 13 for H = 8 as in the standard's Table 2.</summary>
    public static int AdaptiveProportionCutoff { get; } = ComputeAdaptiveProportionCutoff();

    /// <summary>
    /// Returns null when the blob passes both tests, else a short human-readable reason.
    /// </summary>
    public static string? Check(ReadOnlySpan<byte> samples)
    {
        for (int start = 0, end; start < samples.Length; start = end)
        {
            byte value = samples[start];
            for (end = start + 1; end < samples.Length && samples[end] == value; end++) { }
            // Measure the whole run rather than stopping at the cutoff: the length tells an operator "stuck" from "unlucky".
            if (end - start >= RepetitionCountCutoff)
                return $"repetition count test: byte 0x{value:X2} repeated {end - start} times at offset {start}";
        }

        // The trailing partial window (and a blob shorter than W) is tested too, with the full-window cutoff:
        // the count in a shorter window is stochastically smaller, so its false alarm rate can only be lower,
        // and no byte escapes the APT just because the blob length is not a multiple of W.
        for (int start = 0; start < samples.Length; start += AdaptiveProportionWindowSize)
        {
            var window = samples.Slice(start, Math.Min(AdaptiveProportionWindowSize, samples.Length - start));
            int count = window.Count(window[0]);
            if (count >= AdaptiveProportionCutoff)
                return $"adaptive proportion test: byte 0x{window[0]:X2} occurred {count} times " +
                       $"in the {window.Length}-byte window at offset {start}";
        }

        return null;
    }

    // CRITBINOM(n, p, 1 - alpha) is the smallest k with P(X <= k) >= 1 - alpha, i.e. P(X > k) <= alpha. Summing the
    // upper tail directly (smallest terms first) avoids the cancellation of 1 - CDF, and log-space pmfs avoid the
    // underflow of p^n; terms that still underflow to 0 are below 2^-1074 and cannot move a comparison with alpha.
    //
    // Known wrinkle, kept for fidelity with the published table: the first sample of a window is always counted, so the
    // exact per-window false alarm rate is P(Bin(W - 1, p) >= C - 1) ~= 1.28 * alpha for H = 8 (public comments on
    // 800-90B propose C = 2 + CRITBINOM(W - 1, p, 1 - alpha) = 14 instead).
    private static int ComputeAdaptiveProportionCutoff()
    {
        const int n = AdaptiveProportionWindowSize;
        double p = Math.Pow(2, -ClaimedMinEntropyPerByte);
        double alpha = Math.Pow(2, -FalsePositiveExponent);
        double logOddsAgainst = Math.Log(1 - p) - Math.Log(p);

        double logPmf = n * Math.Log(p); // log P(X = k), starting at k = n
        double tail = 0;                 // P(X > k)
        int k = n;
        while (k > 0 && tail + Math.Exp(logPmf) <= alpha)
        {
            tail += Math.Exp(logPmf);
            logPmf += Math.Log((double)k / (n - k + 1)) + logOddsAgainst;
            k--;
        }

        return 1 + k;
    }
}
