# aster_helper.tcl: loaded by the Redis test suite's test_helper.tcl when the harness
# (run.sh) runs the suite through asterd. The suite reads and changes its server's settings
# (CONFIG GET/SET/RESETSTAT, INFO fields through `s` and `status`); asterd is not that server,
# so these go to the server(s) behind it, named in ASTER_BACKENDS (host:port,...): CONFIG SET
# and RESETSTAT to every one (first reply returned), CONFIG GET and INFO (`r info ...`) to the
# first, an INFO field (`s`, `status`) summed over them when every one's is a number, else the
# first one's. asterd answers INFO itself, with its own sections: the suite's INFO checks are
# about the server. The exception is the slow log: SLOWLOG is asterd's own (it logs what it
# serves), so a CONFIG SET of only slowlog-* settings goes to asterd too, whose live knobs
# they are. Everything else the tests send goes through asterd as before.

set ::aster_backends [split $::env(ASTER_BACKENDS) ,]
set ::aster_clients {}

proc aster_backend_clients {} {
    if {[llength $::aster_clients] == 0} {
        foreach hp $::aster_backends {
            set i [string last : $hp]
            lappend ::aster_clients [redis [string range $hp 0 [expr {$i-1}]] [string range $hp [expr {$i+1}] end] 0 $::tls]
        }
    }
    return $::aster_clients
}

proc aster_to_backends {args} {
    set sub [string tolower [lindex $args 1]]
    set clients [aster_backend_clients]
    if {$sub eq "get"} {
        return [[lindex $clients 0] {*}$args]
    }
    if {$sub eq "set"} {
        set slow 1
        foreach {name value} [lrange $args 2 end] {
            if {![string match -nocase slowlog-* $name]} { set slow 0 }
        }
        if {$slow} { aster_orig_r {*}$args }
    }
    set first {}
    set n 0
    foreach c $clients {
        set reply [$c {*}$args]
        if {$n == 0} { set first $reply }
        incr n
    }
    return $first
}

rename r aster_orig_r
proc r {args} {
    set a $args
    if {[string is integer [lindex $a 0]]} {
        set a [lrange $a 1 end]
    }
    switch -- [string tolower [lindex $a 0]] {
        config { return [aster_to_backends {*}$a] }
        info { return [[lindex [aster_backend_clients] 0] {*}$a] }
    }
    uplevel 1 [list aster_orig_r {*}$args]
}

proc status {r property} {
    # The clients the suite counts (CLIENT LIST and KILL's) are asterd's own, which its INFO
    # counts; the servers' are asterd's connections.
    if {$property eq "connected_clients"} {
        return [getInfoProperty [$r info clients] $property]
    }
    set sum 0
    set first {}
    set numeric 1
    set n 0
    foreach c [aster_backend_clients] {
        set v [getInfoProperty [$c info] $property]
        if {$n == 0} { set first $v }
        incr n
        if {[string is double -strict $v]} {
            set sum [expr {$sum + $v}]
        } else {
            set numeric 0
        }
    }
    if {$numeric && $n > 1} { return $sum }
    return $first
}
