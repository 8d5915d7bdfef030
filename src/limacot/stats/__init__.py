"""The one statistics module: plain numbers in, plain numbers out; it imports nothing from limacot.

    bootstrap.bootstrap_interval(statistic, n)   the percentile bootstrap (seeded, resampling items)
    bootstrap.bootstrap_intervals(statistic, n)  the same, for several values per resample
    logistic.logistic_fit(X, y)                  Firth-penalized logistic regression (finite under separation)
    logistic.likelihood_ratio_p(X, y, column)    its penalized likelihood-ratio test of one coefficient
    paired.mcnemar_exact(correct_a, correct_b)   exact McNemar p of two runs scored on the same docs
    paired.paired_permutation_f1(golds, a, b)    paired permutation p of macro-F1(B) - macro-F1(A)
    paired.paired_permutation_mean(a, b)         paired permutation p of mean(B) - mean(A) (a per-doc score)
    paired.holm(p_values)                        Holm step-down adjusted p-values
    agreement.cohen_kappa(a, b, k)               agreement of raters (also percent, tie-discounted, Fleiss)
    intervals.mean_interval(values, stderr)      mean over seeds and its 95% interval (Student's t)
    intervals.seed_summary(values)               mean and sample standard deviation over seeds
"""
