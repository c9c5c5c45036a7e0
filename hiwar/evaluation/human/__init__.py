"""Human evaluation: blind rating sheets and two-rater agreement."""
