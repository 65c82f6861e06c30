"""A sample owner used by several tests: what onboarding should store for her."""

ASHA_PROFILE = {
    "owner_name": "Asha Devi",
    "business_name": "Asha Brass Works",
    "state": "uttar_pradesh",
    "district": "Moradabad",
    "sector": "handicrafts",
    "udyam": "yes",
    "iec": "no",
    "gst": "yes",
    "experience": "never",
    "turnover": "under_40_lakh",
    "markets": ["middle_east", "europe"],
    "phone": "+919876543210",
}
