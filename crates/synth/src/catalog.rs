//! Static vocabulary of the generator: travel vendors as booked (budget
//! spelling) and as they appear on card statements and receipts, booking
//! agencies, expense type and category names, and the everyday decoy
//! expenses (taxis, meals, parking, ...) that must not match any budget.
//!
//! In statement patterns every `#` is replaced by a random digit, so
//! `"SOUTHWEST AIR #######"` becomes e.g. `"SOUTHWEST AIR 5262134"`.

use crate::policy::TravelKind;

/// A travel vendor (airline, hotel property, car rental company, rail
/// operator) in its several spellings.
pub(crate) struct Brand {
    /// Names as the booking tool writes them in `travel_vendor_receipts`.
    pub budget_names: &'static [&'static str],
    /// Card-statement descriptors (`#` = random digit).
    pub statement: &'static [&'static str],
    /// Receipt-style aliases: shortened, lower-cased or legal names.
    pub aliases: &'static [&'static str],
}

/// An expense type name and its category, e.g. ("Airfare", "air travel").
pub(crate) type TypeCategory = (&'static str, &'static str);

pub(crate) const AIRLINES: &[Brand] = &[
    Brand {
        budget_names: &["Southwest Airlines"],
        statement: &[
            "SOUTHWEST AIR #######",
            "SOUTHWEST AIRLINES",
            "SWA*SOUTHWEST",
            "SOUTHWES ##########",
            "SOUTHWEST ##########",
        ],
        aliases: &["Southwest", "southwest airlines", "Southwest Airlines Co."],
    },
    Brand {
        budget_names: &["Delta Air Lines", "Delta"],
        statement: &[
            "DELTA AIR ##########",
            "DELTA AIR LINES ATLANTA",
            "DL *DELTA.COM",
            "DELTA ##########",
        ],
        aliases: &["Delta", "delta air lines", "Delta Airlines"],
    },
    Brand {
        budget_names: &["United Airlines", "United"],
        statement: &[
            "UNITED #######",
            "UNITED AIRLINES",
            "UNITED ##########",
            "UA *UNITED.COM",
        ],
        aliases: &["United", "united airlines", "United Air Lines Inc"],
    },
    Brand {
        budget_names: &["American Airlines"],
        statement: &[
            "AMERICAN AIR##########",
            "AA *AMERICAN AIRLINES",
            "AMERICAN AIRLINES INC",
        ],
        aliases: &["American", "american airlines"],
    },
    Brand {
        budget_names: &["Alaska Airlines"],
        statement: &["ALASKA AIR ##########", "ALASKA AIRLINES SEATTLE"],
        aliases: &["Alaska Air", "alaska airlines"],
    },
    Brand {
        budget_names: &["JetBlue Airways", "JetBlue"],
        statement: &["JETBLUE ##########", "JETBLUE AIRWAYS", "JETBLUE AIR"],
        aliases: &["Jetblue", "jetblue airways"],
    },
    Brand {
        budget_names: &["Air France"],
        statement: &[
            "AIR FRANCE ##########",
            "AIR FRANCE PARIS CDG",
            "AF *AIRFRANCE.COM",
        ],
        aliases: &["Air France KLM", "air france"],
    },
    Brand {
        budget_names: &["Lufthansa", "Deutsche Lufthansa"],
        statement: &[
            "LUFTHANSA ##########",
            "DEUTSCHE LUFTHANSA AG",
            "LH *LUFTHANSA.COM",
        ],
        aliases: &["Lufthansa German Airlines", "lufthansa"],
    },
    Brand {
        budget_names: &["Aeroméxico"],
        statement: &["AEROMEXICO ##########", "AEROVIAS DE MEXICO"],
        aliases: &["Aeromexico", "Aeroméxico"],
    },
];

pub(crate) const HOTELS: &[Brand] = &[
    Brand {
        budget_names: &["Marriott Downtown"],
        statement: &[
            "MARRIOTT SF DOWNTOWN",
            "MARRIOTT DOWNTOWN SAN FRAN",
            "MARRIOTT HOTELS ####",
        ],
        aliases: &["Marriott", "marriott downtown"],
    },
    Brand {
        budget_names: &["Hilton Garden Inn"],
        statement: &[
            "HILTON GARDEN INN CHICAGO",
            "HGI CHICAGO DOWNTOWN NORTH",
            "HILTON GARDEN IN ####",
        ],
        aliases: &["Hilton", "HGI Chicago"],
    },
    Brand {
        budget_names: &["Hyatt Regency Seattle", "Hyatt Regency"],
        statement: &[
            "HYATT REGENCY SEATTLE",
            "HYATT HOTELS ####",
            "HYATT REGENCY SEA",
        ],
        aliases: &["Hyatt", "hyatt regency"],
    },
    Brand {
        budget_names: &["Holiday Inn Express"],
        statement: &[
            "HOLIDAY INN EXPRESS DENVER",
            "HOLIDAY INN EXP #####",
            "IHG HOLIDAY INN EXPRESS",
        ],
        aliases: &["Holiday Inn", "holiday inn express"],
    },
    Brand {
        budget_names: &["Hôtel Le Méridien", "Le Méridien Étoile"],
        statement: &[
            "LE MERIDIEN PARIS ETOILE",
            "HOTEL LE MERIDIEN",
            "LE MERIDIEN #####",
        ],
        aliases: &["Le Meridien", "Hotel Le Meridien"],
    },
    Brand {
        budget_names: &["Courtyard by Marriott Boston"],
        statement: &[
            "COURTYARD BY MARRIOTT BOSTON",
            "COURTYARD ####",
            "CY BOSTON DOWNTOWN",
        ],
        aliases: &["Courtyard", "courtyard boston"],
    },
    Brand {
        budget_names: &["Sheraton Grand Los Angeles"],
        statement: &["SHERATON GRAND LA", "SHERATON HOTELS ####"],
        aliases: &["Sheraton", "sheraton grand"],
    },
    Brand {
        budget_names: &["Hampton Inn"],
        statement: &["HAMPTON INN AUSTIN", "HAMPTON INNS #####"],
        aliases: &["Hampton Inn & Suites", "hampton inn"],
    },
    Brand {
        budget_names: &["Fairmont Le Château Frontenac"],
        statement: &["FAIRMONT LE CHATEAU FRONTENAC", "FAIRMONT HOTELS QUEBEC"],
        aliases: &["Château Frontenac", "Fairmont"],
    },
];

pub(crate) const CAR_RENTALS: &[Brand] = &[
    Brand {
        budget_names: &["Hertz"],
        statement: &["HERTZ RENT-A-CAR", "HERTZ #######", "THE HERTZ CORPORATION"],
        aliases: &["hertz", "Hertz Rent A Car"],
    },
    Brand {
        budget_names: &["Enterprise Rent-A-Car", "Enterprise"],
        statement: &[
            "ENTERPRISE RENT-A-CAR",
            "ENTERPRISE RENTACAR ######",
            "ENT RENT A CAR",
        ],
        aliases: &["Enterprise", "enterprise rent a car"],
    },
    Brand {
        budget_names: &["Avis"],
        statement: &[
            "AVIS RENT A CAR",
            "AVIS.COM ######",
            "AVIS RENT-A-CAR #####",
        ],
        aliases: &["Avis Budget Group", "avis"],
    },
    Brand {
        budget_names: &["National Car Rental"],
        statement: &["NATIONAL CAR RENTAL", "NATIONAL CAR ######"],
        aliases: &["National", "national car rental"],
    },
    Brand {
        budget_names: &["Budget Rent a Car"],
        statement: &["BUDGET RENT-A-CAR", "BUDGET RENT A CAR ######"],
        aliases: &["Budget", "budget rent a car"],
    },
    Brand {
        budget_names: &["Sixt"],
        statement: &["SIXT RENT A CAR", "SIXT ######"],
        aliases: &["Sixt rent a car", "sixt"],
    },
    Brand {
        budget_names: &["Alamo"],
        statement: &["ALAMO RENT-A-CAR", "ALAMO ######"],
        aliases: &["Alamo Rent A Car", "alamo"],
    },
];

pub(crate) const RAIL_OPERATORS: &[Brand] = &[
    Brand {
        budget_names: &["Amtrak"],
        statement: &[
            "AMTRAK .COM #######",
            "AMTRAK #######",
            "AMTRAK TEL #######",
            "AMTRAK NEC",
        ],
        aliases: &["amtrak", "Amtrak Acela"],
    },
    Brand {
        budget_names: &["Eurostar"],
        statement: &["EUROSTAR INTERNATIONAL", "EUROSTAR ########"],
        aliases: &["Eurostar Ltd", "eurostar"],
    },
    Brand {
        budget_names: &["SNCF"],
        statement: &["SNCF VOYAGEURS", "SNCF CONNECT ######", "OUI.SNCF"],
        aliases: &["SNCF Connect", "sncf"],
    },
    Brand {
        budget_names: &["Deutsche Bahn"],
        statement: &["DB BAHN ########", "DB VERTRIEB GMBH"],
        aliases: &["DB", "deutsche bahn"],
    },
    Brand {
        budget_names: &["VIA Rail"],
        statement: &["VIA RAIL CANADA ######"],
        aliases: &["VIA Rail Canada", "via rail"],
    },
    Brand {
        budget_names: &["Brightline"],
        statement: &["BRIGHTLINE TRAINS ######"],
        aliases: &["brightline"],
    },
];

/// Booking agencies: the budget's `purchase_vendor_receipts` when the trip
/// was not booked directly, and then often the card-statement vendor too.
pub(crate) const AGENCIES: &[Brand] = &[
    Brand {
        budget_names: &["Expedia"],
        statement: &["EXPEDIA ##########", "EXPEDIA.COM", "EXP*EXPEDIA ########"],
        aliases: &["Expedia", "expedia.com"],
    },
    Brand {
        budget_names: &["Concur Travel"],
        statement: &["CONCUR TRAVEL", "CONCUR TRVL ######"],
        aliases: &["Concur Travel", "concur"],
    },
    Brand {
        budget_names: &["Egencia"],
        statement: &["EGENCIA ########", "EGENCIA LLC"],
        aliases: &["Egencia"],
    },
    Brand {
        budget_names: &["American Express GBT"],
        statement: &["AMEX GBT ######", "AMERICAN EXPRESS TRAVEL"],
        aliases: &["Amex GBT"],
    },
    Brand {
        budget_names: &["Navan"],
        statement: &["NAVAN* TRIP ######", "NAVAN INC"],
        aliases: &["Navan"],
    },
];

/// The brands of one kind of travel.
pub(crate) fn brands(kind: TravelKind) -> &'static [Brand] {
    match kind {
        TravelKind::Flight => AIRLINES,
        TravelKind::Hotel => HOTELS,
        TravelKind::Car => CAR_RENTALS,
        TravelKind::Train => RAIL_OPERATORS,
    }
}

/// `budget_type_budget` spellings of each kind, with weights.
pub(crate) fn budget_type_names(kind: TravelKind) -> &'static [(&'static str, u32)] {
    match kind {
        TravelKind::Flight => &[("flight", 1)],
        TravelKind::Hotel => &[("hotel", 1)],
        TravelKind::Car => &[("car", 1)],
        TravelKind::Train => &[("train", 7), ("rail", 3)],
    }
}

/// Expense type and category names used for an expense of each kind.
pub(crate) fn travel_types(kind: TravelKind) -> &'static [TypeCategory] {
    match kind {
        TravelKind::Flight => &[
            ("Airfare", "air travel"),
            ("Airfare", "airfare"),
            ("Air Travel", "air travel"),
            ("Airline Ticket", "air travel"),
            ("Airfare", "travel"),
        ],
        TravelKind::Hotel => &[
            ("Hotel", "lodging"),
            ("Lodging", "lodging"),
            ("Hotel", "hotel"),
            ("Hotel Room", "lodging"),
            ("Accommodation", "lodging"),
        ],
        TravelKind::Car => &[
            ("Car Rental", "car rental"),
            ("Rental Car", "car rental"),
            ("Car Rental", "ground transportation"),
            ("Auto Rental", "car rental"),
        ],
        TravelKind::Train => &[
            ("Train", "rail"),
            ("Rail", "rail"),
            ("Train Ticket", "train"),
            ("Train", "ground transportation"),
            ("Public Transport", "rail"),
        ],
    }
}

/// Itemization type names for one night of a hotel bill split per night.
pub(crate) const HOTEL_NIGHT_TYPES: &[&str] = &["Room Rate", "Room Charge", "Lodging - Room"];

/// Itemization type names that mark a premium (out-of-policy) purchase of
/// each kind; every one contains a [`crate::policy::PREMIUM_MARKERS`] entry.
pub(crate) fn premium_types(kind: TravelKind) -> &'static [&'static str] {
    match kind {
        TravelKind::Flight => &[
            "Airfare - First Class",
            "Airfare - Business Class",
            "Seat Upgrade",
        ],
        TravelKind::Hotel => &["Minibar", "Room Service"],
        TravelKind::Car => &["Car Rental - Luxury", "Car Rental - Upgrade"],
        TravelKind::Train => &["Train - First Class", "Rail - Business Class"],
    }
}

/// Everyday expenses that never belong to a travel budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecoyKind {
    pub vendors: &'static [&'static str],
    pub types: &'static [TypeCategory],
    /// Median amount in dollars (log-normal).
    pub median: f64,
    /// Log-normal spread.
    pub sigma: f64,
    /// Bounds in dollars.
    pub min: f64,
    pub max: f64,
}

pub(crate) const TAXI: DecoyKind = DecoyKind {
    vendors: &[
        "taxi",
        "Taxi",
        "YELLOW CAB SF ####",
        "CHECKER CAB CO",
        "FLYWHEEL TAXI",
        "TAXI MED ####",
    ],
    types: &[
        ("Taxi", "taxi"),
        ("Taxi", "ground transportation"),
        ("Ground Transportation", "taxi"),
    ],
    median: 24.0,
    sigma: 0.5,
    min: 6.0,
    max: 120.0,
};

pub(crate) const RIDESHARE: DecoyKind = DecoyKind {
    vendors: &[
        "UBER *TRIP HELP.UBER.COM",
        "UBER   *TRIP",
        "UBER *TRIP ####",
        "LYFT   *RIDE SUN 4PM",
        "LYFT *RIDE ####",
        "Uber",
    ],
    types: &[
        ("Taxi", "taxi"),
        ("Rideshare", "ground transportation"),
        ("Ground Transportation", "ground transportation"),
    ],
    median: 21.0,
    sigma: 0.55,
    min: 5.0,
    max: 140.0,
};

pub(crate) const MEALS: DecoyKind = DecoyKind {
    vendors: &[
        "STARBUCKS STORE #####",
        "Starbucks",
        "CHIPOTLE ####",
        "SQ *BLUE BOTTLE COFFEE",
        "PANERA BREAD ######",
        "TST* SHAKE SHACK ####",
        "MCDONALD'S F#####",
        "Café de Flore",
        "HUDSON NEWS ####",
    ],
    types: &[
        ("Meals", "meals"),
        ("Breakfast", "meals"),
        ("Dinner", "meals"),
        ("Lunch", "meals"),
        ("Business Meal", "meals and entertainment"),
    ],
    median: 18.0,
    sigma: 0.8,
    min: 3.0,
    max: 240.0,
};

pub(crate) const PARKING: DecoyKind = DecoyKind {
    vendors: &[
        "SFO PARKING",
        "LAZ PARKING ####",
        "PARK N FLY ####",
        "SP+ PARKING ####",
        "ParkMobile",
    ],
    types: &[("Parking", "parking"), ("Parking", "ground transportation")],
    median: 28.0,
    sigma: 0.6,
    min: 4.0,
    max: 180.0,
};

pub(crate) const OFFICE: DecoyKind = DecoyKind {
    vendors: &[
        "STAPLES #####",
        "OFFICE DEPOT #####",
        "AMAZON MKTPLACE PMTS",
        "AMZN Mktp US*####",
        "FEDEX OFFICE ####",
    ],
    types: &[
        ("Office Supplies", "office supplies"),
        ("Supplies", "office"),
        ("Shipping", "office"),
    ],
    median: 35.0,
    sigma: 0.8,
    min: 4.0,
    max: 400.0,
};

pub(crate) const FUEL: DecoyKind = DecoyKind {
    vendors: &[
        "SHELL OIL ###########",
        "CHEVRON ######",
        "EXXONMOBIL ####",
        "BP#######",
    ],
    types: &[
        ("Fuel", "fuel"),
        ("Gasoline", "car rental"),
        ("Fuel", "ground transportation"),
    ],
    median: 45.0,
    sigma: 0.35,
    min: 15.0,
    max: 120.0,
};

pub(crate) const CONNECTIVITY: DecoyKind = DecoyKind {
    vendors: &[
        "GOGOAIR.COM",
        "T-MOBILE *ROAMING",
        "BOINGO WIRELESS",
        "VIASAT IN-FLIGHT WI-FI",
    ],
    types: &[("Internet", "phone/internet"), ("Wi-Fi", "phone/internet")],
    median: 15.0,
    sigma: 0.5,
    min: 4.0,
    max: 60.0,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PREMIUM_MARKERS;

    fn has_marker(text: &str) -> bool {
        let upper = text.to_uppercase();
        PREMIUM_MARKERS.iter().any(|m| upper.contains(m))
    }

    #[test]
    fn lists_are_non_empty_and_normal_names_carry_no_premium_marker() {
        let decoys = [TAXI, RIDESHARE, MEALS, PARKING, OFFICE, FUEL, CONNECTIVITY];
        for kind in TravelKind::ALL {
            assert!(!brands(kind).is_empty());
            assert!(!budget_type_names(kind).is_empty());
            assert!(!travel_types(kind).is_empty());
            assert!(!premium_types(kind).is_empty());
            assert!(
                premium_types(kind).iter().all(|t| has_marker(t)),
                "{kind:?}"
            );
            for (name, category) in travel_types(kind) {
                assert!(!has_marker(name) && !has_marker(category));
            }
        }
        for brand in AIRLINES
            .iter()
            .chain(HOTELS)
            .chain(CAR_RENTALS)
            .chain(RAIL_OPERATORS)
            .chain(AGENCIES)
        {
            for list in [brand.budget_names, brand.statement, brand.aliases] {
                assert!(!list.is_empty());
                assert!(
                    list.iter()
                        .all(|name| !name.is_empty() && !has_marker(name))
                );
            }
        }
        for decoy in decoys {
            assert!(!decoy.vendors.is_empty() && !decoy.types.is_empty());
            assert!(decoy.min > 0.0 && decoy.min < decoy.max);
            assert!(decoy.vendors.iter().all(|v| !has_marker(v)));
        }
        assert!(HOTEL_NIGHT_TYPES.iter().all(|t| !has_marker(t)));
    }
}
