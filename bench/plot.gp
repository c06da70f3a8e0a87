# plot.gp - granularity curves for bench/run.sh: parallel efficiency vs task size T (log x),
# one line per peer; left panel chunksize 1, right panel chunksize auto.
#   gnuplot -e "datadir='bench/results'" bench/plot.gp
# Reads datadir/gran_c1.dat and datadir/gran_cauto.dat (written by bench/report.py: a header
# "T peer1 peer2 ..." then one row per T, '?' = no data) and writes datadir/granularity.png.
if (!exists("datadir")) datadir = "bench/results"
set terminal pngcairo size 1400,640 font "sans,10" noenhanced
set output datadir."/granularity.png"
set datafile missing "?"
set key autotitle columnheader
set logscale x 10
set xrange [0.7:1500]
set xtics ("1" 1, "10" 10, "100" 100, "1000" 1000)
set yrange [0:1.3]
set ytics 0.1
set grid
set xlabel "task size T (us, log scale)" offset 0,0.6
set ylabel "parallel efficiency = serial / (2 x parallel)"
set key below horizontal maxrows 2 box spacing 1.1
set bmargin 7.5
set multiplot layout 1,2 title "mproc vs peers: efficiency vs task granularity (2 workers, median of reps)"
ncols(f) = int(system("head -1 '".f."' | wc -w"))
do for [c in "1 auto"] {
    f = datadir."/gran_c".c.".dat"
    n = ncols(f)
    set title "chunksize ".c
    plot for [i=2:n] f using 1:i with linespoints lw 2 pt (i-1) ps 1.3, \
         0.5 with lines dt 2 lc rgb "gray40" title "50% (METG)"
}
unset multiplot
