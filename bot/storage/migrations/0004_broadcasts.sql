-- Reserved for broadcasts (filled in by the broadcasts change).
SELECT 1;
