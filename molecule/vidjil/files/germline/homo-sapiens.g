{
  "comment": "labops test germline set: made-up sequences in Vidjil's layout, not IMGT data",
  "species": "Homo sapiens",
  "species_taxon_id": 9606,
  "systems": {
    "IGH": {"shortcut": "H", "color": "#6c71c4",
            "recombinations": [{"5": ["IGHV.fa"], "4": ["IGHD.fa"], "3": ["IGHJ.fa"]}]}
  }
}
